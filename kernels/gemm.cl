/* gemm.cl: C = alpha * op(A) * op(B) + beta * C, row-major, one tiled body for every layout and
 * element type.
 *
 * Kernels gemm_<ta><tb>_<ea><eb>:
 *   <ta><tb> in nn, nt, tn, tt: n uses the matrix as stored, t its transpose;
 *   <ea><eb> in ff, uf, fu, uu: element type of A and B, f float, u uchar (converted to float;
 *            the caller scales pixels through alpha).
 *   reads  op(A) m x k: A stored m x k (n) or k x m (t), row stride lda, from a + a_off
 *          op(B) k x n: B stored k x n (n) or n x k (t), row stride ldb, from b + b_off
 *          C     m x n, row stride ldc, from c + c_off, only when beta != 0 (else C may hold NaN)
 *   writes C     m x n (nothing outside the m x n block)
 *   NDRange 3D: global (ceil(n / TSN) * RTSN, ceil(m / TSM) * RTSM, split), local (RTSN, RTSM, 1)
 *   Split-K: work-group layer z = get_group_id(2) sums k in [z * kc, min(k, (z + 1) * kc)) and
 *   writes its C at c + c_off + z * c_slice; with several layers the host passes a scratch C
 *   (alpha 1, beta 0, ldc n, c_slice m * n) and gemm_split_sum adds them.
 *
 * gemm_split_sum: NDRange (m * n)
 *   reads  part[split x m x n]; C (row stride ldc, from c + c_off) only when beta != 0
 *   writes C[r][col] = alpha * sum over z of part[z][r][col], z in order (deterministic),
 *          + beta * C[r][col] when beta != 0
 *
 * Each work-group computes a TSM x TSN tile of C; each work-item a WPTM x WPTN register block
 * spread with strides RTSM / RTSN over the tile (so neighbouring work-items touch neighbouring
 * columns of C and of the B tile). The k dimension goes through local memory TSK at a time;
 * loads outside op(A) or op(B) read as zero, stores outside C are skipped, so any m, n, k work.
 * The local tiles' rows are padded by one float: the loaders of k-contiguous operands write
 * down a column of the tile, which without the pad hits one bank TSK times. Pixels stored
 * k-contiguous are read four at a time (vload4). Matrix offsets inside one operand are int:
 * the host checks that every operand spans less than 2^31 elements. Accumulation is float in
 * k order within a slice. */

#ifndef TSM
#define TSM 64          /* tile rows of C per work-group */
#endif
#ifndef TSN
#define TSN 64          /* tile columns of C per work-group */
#endif
#ifndef TSK
#define TSK 16          /* k per local-memory step */
#endif
#ifndef WPTM
#define WPTM 4          /* rows of C per work-item */
#endif
#ifndef WPTN
#define WPTN 4          /* columns of C per work-item */
#endif

#if TSM % WPTM != 0 || TSN % WPTN != 0
#error "TSM and TSN must be multiples of WPTM and WPTN"
#endif

#define RTSM (TSM / WPTM)   /* work-items along m */
#define RTSN (TSN / WPTN)   /* work-items along n */
#define WGS (RTSM * RTSN)

#if TSK % 4 != 0
#error "TSK must be a multiple of 4 (the pixel loader reads four at a time)"
#endif

#define PAD 1   /* floats of padding after each row of a local tile */

/* Copies a tile of the "outer x k" view of a matrix into local memory as tile[kk][o]
 * (tile_o outer elements per k row, rows tile_o + PAD apart), zero outside outer x k. op(A)
 * is such a view with outer = m; op(B) transposed is one with outer = n. The stored layout is
 * outer-major (x[o * ld + kk], contiguous along k) or k-major (x[kk * ld + o], contiguous
 * along outer); consecutive work-items read consecutive addresses in both. */
static inline void gemm_load_tile_f(__local float *tile, const int tile_o,
                                    __global const float *x, const int ld, const int outer_major,
                                    const int o0, const int outer, const int k0, const int k)
{
    const int tid = get_local_id(1) * RTSN + get_local_id(0);
    for (int e = tid; e < tile_o * TSK; e += WGS) {
        int o, kk;
        if (outer_major) { kk = e % TSK; o = e / TSK; }
        else { o = e % tile_o; kk = e / tile_o; }
        const int go = o0 + o, gk = k0 + kk;
        float v = 0.0f;
        if (go < outer && gk < k) v = x[outer_major ? go * ld + gk : gk * ld + go];
        tile[kk * (tile_o + PAD) + o] = v;
    }
}

/* The same for pixels; outer-major rows (an image's pixels along k) four at a time. */
static inline void gemm_load_tile_u(__local float *tile, const int tile_o,
                                    __global const uchar *x, const int ld, const int outer_major,
                                    const int o0, const int outer, const int k0, const int k)
{
    const int tid = get_local_id(1) * RTSN + get_local_id(0);
    if (outer_major) {
        for (int e = tid; e < tile_o * (TSK / 4); e += WGS) {
            const int kq = e % (TSK / 4) * 4, o = e / (TSK / 4);
            const int go = o0 + o, gk = k0 + kq;
            float4 v = (float4)(0.0f);
            if (go < outer) {
                __global const uchar *p = x + go * ld + gk;
                if (gk + 3 < k) {
                    v = convert_float4(vload4(0, p));
                } else {
                    if (gk < k) v.s0 = (float)p[0];
                    if (gk + 1 < k) v.s1 = (float)p[1];
                    if (gk + 2 < k) v.s2 = (float)p[2];
                }
            }
            __local float *t = tile + kq * (tile_o + PAD) + o;
            t[0] = v.s0;
            t[tile_o + PAD] = v.s1;
            t[2 * (tile_o + PAD)] = v.s2;
            t[3 * (tile_o + PAD)] = v.s3;
        }
        return;
    }
    for (int e = tid; e < tile_o * TSK; e += WGS) {
        const int o = e % tile_o, kk = e / tile_o;
        const int go = o0 + o, gk = k0 + kk;
        float v = 0.0f;
        if (go < outer && gk < k) v = (float)x[gk * ld + go];
        tile[kk * (tile_o + PAD) + o] = v;
    }
}

/* acc[i][j] += sum over the TSK k of the tile: as[kk][ty + i * RTSM] * bs[kk][tx + j * RTSN]. */
static inline void gemm_acc_tile(__local const float *as, __local const float *bs, float *acc)
{
    const int tx = get_local_id(0), ty = get_local_id(1);
    for (int kk = 0; kk < TSK; kk++) {
        float bv[WPTN];
        for (int j = 0; j < WPTN; j++) bv[j] = bs[kk * (TSN + PAD) + tx + j * RTSN];
        for (int i = 0; i < WPTM; i++) {
            const float av = as[kk * (TSM + PAD) + ty + i * RTSM];
            for (int j = 0; j < WPTN; j++) acc[i * WPTN + j] += av * bv[j];
        }
    }
}

/* C[r][col] = alpha * acc (+ beta * C[r][col] when beta != 0) inside m x n. */
static inline void gemm_store(const float *acc, const int row0, const int col0, const int m,
                              const int n, const float alpha, const float beta,
                              __global float *c, const int ldc)
{
    const int tx = get_local_id(0), ty = get_local_id(1);
    for (int i = 0; i < WPTM; i++) {
        const int r = row0 + ty + i * RTSM;
        if (r >= m) break;
        for (int j = 0; j < WPTN; j++) {
            const int col = col0 + tx + j * RTSN;
            if (col >= n) break;
            float v = alpha * acc[i * WPTN + j];
            if (beta != 0.0f) v += beta * c[r * ldc + col];
            c[r * ldc + col] = v;
        }
    }
}

/* One kernel per (layout, element types): A is outer-major unless transposed, B^T is
 * outer-major only when B is transposed. */
#define GEMM_KERNEL(NAME, TA, LOAD_A, TRANS_A, TB, LOAD_B, TRANS_B)                           \
    __kernel __attribute__((reqd_work_group_size(RTSN, RTSM, 1)))                              \
    void NAME(const int m, const int n, const int k, const int kc, const float alpha,          \
              __global const TA *a, const ulong a_off, const int lda,                          \
              __global const TB *b, const ulong b_off, const int ldb,                          \
              const float beta, __global float *c, const ulong c_off, const int ldc,           \
              const ulong c_slice)                                                             \
    {                                                                                          \
        __local float as[TSK * (TSM + PAD)];                                                   \
        __local float bs[TSK * (TSN + PAD)];                                                   \
        float acc[WPTM * WPTN];                                                                \
        for (int i = 0; i < WPTM * WPTN; i++) acc[i] = 0.0f;                                   \
        const int row0 = get_group_id(1) * TSM, col0 = get_group_id(0) * TSN;                  \
        const int kbeg = get_group_id(2) * kc, kend = min(k, kbeg + kc);                       \
        for (int k0 = kbeg; k0 < kend; k0 += TSK) {                                            \
            LOAD_A(as, TSM, a + a_off, lda, !(TRANS_A), row0, m, k0, kend);                    \
            LOAD_B(bs, TSN, b + b_off, ldb, (TRANS_B), col0, n, k0, kend);                     \
            barrier(CLK_LOCAL_MEM_FENCE);                                                      \
            gemm_acc_tile(as, bs, acc);                                                        \
            barrier(CLK_LOCAL_MEM_FENCE);                                                      \
        }                                                                                      \
        gemm_store(acc, row0, col0, m, n, alpha, beta,                                         \
                   c + c_off + get_group_id(2) * c_slice, ldc);                                \
    }

#define GEMM_LAYOUTS(EA, TA, LOAD_A, EB, TB, LOAD_B)                                          \
    GEMM_KERNEL(gemm_nn_##EA##EB, TA, LOAD_A, 0, TB, LOAD_B, 0)                               \
    GEMM_KERNEL(gemm_nt_##EA##EB, TA, LOAD_A, 0, TB, LOAD_B, 1)                               \
    GEMM_KERNEL(gemm_tn_##EA##EB, TA, LOAD_A, 1, TB, LOAD_B, 0)                               \
    GEMM_KERNEL(gemm_tt_##EA##EB, TA, LOAD_A, 1, TB, LOAD_B, 1)

/* The host builds one variant per program (PoCL compiles every kernel of a program, and a
 * training launches a few of the sixteen): GEMM_ONLY names it, GEMM_A_T / GEMM_B_T, _LOAD and
 * _TRANS give its element types, tile loaders and layouts; GEMM_NONE leaves only
 * gemm_split_sum. Without either, all sixteen. */
#if defined(GEMM_ONLY)
GEMM_KERNEL(GEMM_ONLY, GEMM_A_T, GEMM_A_LOAD, GEMM_A_TRANS, GEMM_B_T, GEMM_B_LOAD, GEMM_B_TRANS)
#elif !defined(GEMM_NONE)
GEMM_LAYOUTS(f, float, gemm_load_tile_f, f, float, gemm_load_tile_f)
GEMM_LAYOUTS(u, uchar, gemm_load_tile_u, f, float, gemm_load_tile_f)
GEMM_LAYOUTS(f, float, gemm_load_tile_f, u, uchar, gemm_load_tile_u)
GEMM_LAYOUTS(u, uchar, gemm_load_tile_u, u, uchar, gemm_load_tile_u)
#endif

__kernel void gemm_split_sum(__global const float *part, const int split, const int m,
                             const int n, const float alpha, const float beta,
                             __global float *c, const ulong c_off, const int ldc)
{
    const size_t i = get_global_id(0), mn = (size_t)m * (size_t)n;
    if (i >= mn) return;
    float s = 0.0f;
    for (int z = 0; z < split; z++) s += part[(size_t)z * mn + i];
    const int r = (int)(i / (size_t)n), col = (int)(i % (size_t)n);
    __global float *dst = c + c_off + (size_t)r * (size_t)ldc + (size_t)col;
    float v = alpha * s;
    if (beta != 0.0f) v += beta * *dst;
    *dst = v;
}
