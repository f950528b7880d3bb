// ort_compare.js: runs a cltrain ONNX model in ONNX Runtime (npm's onnxruntime-node, CPU) on a
// set of IDX images and compares it with `cltrain eval --predictions` for the same model:
// every predicted class must be equal, every probability within the tolerance.
//   node ort_compare.js MODEL.onnx IMAGES.idx[.gz] PREDICTIONS.csv ABS_TOL REL_TOL
// ONNX Runtime is found through NODE_PATH (scripts/test_onnx.sh sets it). Exit 0 agreement,
// 1 disagreement, 2 bad arguments or unreadable inputs.
'use strict';
const fs = require('fs');
const zlib = require('zlib');

function die(status, msg) {
    console.error(`ort_compare: ${msg}`);
    process.exit(status);
}

// IDX images: magic 0x00000803, count, rows, cols (big-endian u32), then bytes.
function readIdxImages(path) {
    let buf = fs.readFileSync(path);
    if (path.endsWith('.gz')) buf = zlib.gunzipSync(buf);
    if (buf.length < 16 || buf.readUInt32BE(0) !== 0x803) die(2, `${path}: not an IDX image file`);
    const n = buf.readUInt32BE(4), pixels = buf.readUInt32BE(8) * buf.readUInt32BE(12);
    if (buf.length !== 16 + n * pixels) die(2, `${path}: ${buf.length} bytes, its header needs ${16 + n * pixels}`);
    return { n, pixels, bytes: buf.subarray(16) };
}

// The CSV of `cltrain eval --predictions`: index,label,predicted,p0..p{C-1}.
function readPredictions(path) {
    const lines = fs.readFileSync(path, 'utf8').trim().split('\n');
    const header = lines[0].split(',');
    const classes = header.length - 3;
    if (header[2] !== 'predicted' || classes < 1) die(2, `${path}: not a --predictions file`);
    const n = lines.length - 1;
    const predicted = new Int32Array(n), labels = new Int32Array(n), probs = new Float64Array(n * classes);
    for (let i = 0; i < n; i++) {
        const f = lines[i + 1].split(',');
        if (f.length !== classes + 3) die(2, `${path}:${i + 2}: ${f.length} fields, expected ${classes + 3}`);
        labels[i] = Number(f[1]);
        predicted[i] = Number(f[2]);
        for (let k = 0; k < classes; k++) probs[i * classes + k] = Number(f[3 + k]);
    }
    return { n, classes, labels, predicted, probs };
}

function argmax(a, off, n) {
    let best = 0;
    for (let k = 1; k < n; k++) if (a[off + k] > a[off + best]) best = k;
    return best;
}

async function main() {
    const [modelPath, imagesPath, predPath, absArg, relArg] = process.argv.slice(2);
    if (!relArg) die(2, 'usage: node ort_compare.js MODEL.onnx IMAGES.idx PREDICTIONS.csv ABS_TOL REL_TOL');
    const absTol = Number(absArg), relTol = Number(relArg);
    const ort = require('onnxruntime-node');
    const img = readIdxImages(imagesPath);
    const ref = readPredictions(predPath);
    if (ref.n !== img.n) die(2, `${predPath} has ${ref.n} rows, ${imagesPath} ${img.n} images`);

    // The model's input: float32 pixels in [0, 1], the byte / 255.
    const x = new Float32Array(img.n * img.pixels);
    for (let i = 0; i < x.length; i++) x[i] = img.bytes[i] / 255;
    const session = await ort.InferenceSession.create(modelPath, { executionProviders: ['cpu'] });
    const out = await session.run({ pixels: new ort.Tensor('float32', x, [img.n, img.pixels]) });
    const p = out.probabilities;
    if (!p || p.dims.length !== 2 || p.dims[0] !== img.n || p.dims[1] !== ref.classes)
        die(1, `output 'probabilities' has shape [${p ? p.dims : ''}], expected [${img.n}, ${ref.classes}]`);

    let equal = 0, right = 0, worstAbs = 0, worstExcess = 0, badProb = 0, firstBad = -1;
    for (let i = 0; i < img.n; i++) {
        const off = i * ref.classes;
        const pred = argmax(p.data, off, ref.classes);
        if (pred === ref.predicted[i]) equal++;
        else if (firstBad < 0) firstBad = i;
        if (pred === ref.labels[i]) right++;
        for (let k = 0; k < ref.classes; k++) {
            const a = p.data[off + k], b = ref.probs[off + k];
            const d = Math.abs(a - b);
            if (!(d <= absTol + relTol * Math.abs(b))) badProb++;
            worstAbs = Math.max(worstAbs, d);
            worstExcess = Math.max(worstExcess, d / (absTol + relTol * Math.abs(b)));
        }
    }
    console.log(`${modelPath}: ONNX Runtime ${ort.env.versions ? ort.env.versions.common : ''} on ${img.n} images: ` +
        `predictions equal ${equal}/${img.n}, accuracy ${(right / img.n).toFixed(4)}, ` +
        `max |dp| ${worstAbs.toExponential(2)} (${(100 * worstExcess).toFixed(1)} % of the tolerance ` +
        `${absTol} + ${relTol} p)`);
    if (equal !== img.n) die(1, `${img.n - equal} predictions differ from cltrain eval's, the first at image ${firstBad}`);
    if (badProb) die(1, `${badProb} probabilities differ by more than ${absTol} + ${relTol} p`);
}

main().catch((e) => die(1, e && e.message ? e.message : String(e)));
