/* augment.cl: training-time distortions of uint8 images (the transform is described in
 * include/augment.h; src/augment.c is the plain-C reference).
 *
 * augment: NDRange (m * LS), work-groups of LS: one work-group per image, its work-items
 *   striding over the w*h pixels.
 *   reads  src[src_rows x w*h] (uchar): image i is row idx[idx_off + i] (use_idx) or row
 *          idx_off + i
 *   writes dst[m x w*h] (uchar), image i resampled with the transform of position pos0 + i;
 *          with elastic (alpha > 0) scratch[m x 4 w*h] (float): per image the raw field
 *          (2 per pixel) then its horizontal blur (2 per pixel); the vertical blur is done
 *          per output pixel. A row index >= src_rows reads a blank image. */
#include "rng.cl"

static inline float aug_pixel(__global const uchar *img, int w, int h, int x, int y, int ok)
{
    return ok && x >= 0 && y >= 0 && x < w && y < h ? (float)img[y * w + x] : 0.0f;
}

/* Largest Gaussian radius: ceil(3 sigma) for --augment's sigma <= 20. */
#define AUG_RMAX 60

__kernel void augment(__global const uchar *src, const uint src_rows, __global const uint *idx,
                      const int use_idx, const ulong idx_off, const int w, const int h,
                      const float shift, const float rotate, const float scale,
                      const float alpha, const float sigma, const int R, const ulong seed,
                      const ulong stream, const ulong pos0, __global float *scratch,
                      __global uchar *dst)
{
    __local float gk[2 * AUG_RMAX + 1];   /* the Gaussian's taps, unnormalised */
    const size_t i = get_group_id(0);
    const int lid = (int)get_local_id(0), ls = (int)get_local_size(0);
    const int np = w * h;
    const uint row = use_idx ? idx[idx_off + i] : (uint)(idx_off + i);
    const int ok = row < src_rows;
    __global const uchar *img = src + (size_t)(ok ? row : 0) * (size_t)np;
    __global uchar *out = dst + i * (size_t)np;
    const ulong base = (pos0 + i) * (4 + 2 * (ulong)np);

    const float u0 = 2.0f * rng_uniform(seed, stream, base) - 1.0f;
    const float u1 = 2.0f * rng_uniform(seed, stream, base + 1) - 1.0f;
    const float u2 = 2.0f * rng_uniform(seed, stream, base + 2) - 1.0f;
    const float u3 = 2.0f * rng_uniform(seed, stream, base + 3) - 1.0f;
    const float tx = shift * u0, ty = shift * u1;
    const float th = rotate * u2 * (M_PI_F / 180.0f);
    const float sc = 1.0f + scale * u3, ct = cos(th), st = sin(th);
    const float cx = 0.5f * (float)(w - 1), cy = 0.5f * (float)(h - 1);

    /* alpha is the same for the whole work-group, so the barriers below are uniform. */
    const int elastic = alpha > 0.0f && R <= AUG_RMAX;
    __global float *raw = scratch + i * 4 * (size_t)np, *hb = raw + 2 * (size_t)np;
    float norm = 1.0f;
    if (elastic) {
        for (int k = lid; k <= 2 * R; k += ls)
            gk[k] = exp(-(float)((k - R) * (k - R)) / (2.0f * sigma * sigma));
        for (int p = lid; p < 2 * np; p += ls)
            raw[p] = 2.0f * rng_uniform(seed, stream, base + 4 + (ulong)p) - 1.0f;
        barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
        norm = 0.0f;
        for (int k = 0; k <= 2 * R; k++) norm += gk[k];
        for (int p = lid; p < 2 * np; p += ls) {
            const int c = p & 1, x = (p >> 1) % w, y = (p >> 1) / w;
            const int k0 = max(-R, -x), k1 = min(R, w - 1 - x);
            float acc = 0.0f;
            for (int k = k0; k <= k1; k++) acc += gk[k + R] * raw[2 * (y * w + x + k) + c];
            hb[p] = acc / norm;
        }
        barrier(CLK_GLOBAL_MEM_FENCE);
    }
    for (int p = lid; p < np; p += ls) {
        const int x = p % w, y = p / w;
        const float du = (float)x - cx - tx, dv = (float)y - cy - ty;
        float sx = cx + (ct * du + st * dv) / sc, sy = cy + (ct * dv - st * du) / sc;
        if (elastic) {
            const int k0 = max(-R, -y), k1 = min(R, h - 1 - y);
            float gx = 0.0f, gy = 0.0f;
            for (int k = k0; k <= k1; k++) {
                const float g = gk[k + R];
                gx += g * hb[2 * ((y + k) * w + x)];
                gy += g * hb[2 * ((y + k) * w + x) + 1];
            }
            sx += alpha * (gx / norm);
            sy += alpha * (gy / norm);
        }
        const float fx0 = floor(sx), fy0 = floor(sy), fx = sx - fx0, fy = sy - fy0;
        /* Far outside the image every tap is 0; clamping keeps the int conversion defined. */
        const int x0 = (int)clamp(fx0, -2.0f, (float)w + 1.0f), y0 = (int)clamp(fy0, -2.0f, (float)h + 1.0f);
        const float v = (1.0f - fy) * ((1.0f - fx) * aug_pixel(img, w, h, x0, y0, ok) +
                                       fx * aug_pixel(img, w, h, x0 + 1, y0, ok)) +
                        fy * ((1.0f - fx) * aug_pixel(img, w, h, x0, y0 + 1, ok) +
                              fx * aug_pixel(img, w, h, x0 + 1, y0 + 1, ok));
        out[p] = (uchar)clamp(floor(v + 0.5f), 0.0f, 255.0f);
    }
}
