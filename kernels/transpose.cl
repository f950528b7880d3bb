/* transpose.cl: a 16 x 16 block of floats turned around in registers, shared by fused_step.cl
 * (layer 0's update tiles) and sparse_step.cl (a block of rows' output layer with a row in
 * each lane). */
#ifndef CLTRAIN_TRANSPOSE_CL
#define CLTRAIN_TRANSPOSE_CL

/* r[i].s[l] becomes r[l].s[i]: four rounds, each swapping the off-diagonal h x h blocks of
 * every 2h x 2h block (h = 8, 4, 2, 1), lane shuffles with constant masks. */
#define SWAP_BLOCKS(h, ma, mb)                                                                 \
    for (int i = 0; i < 16; i++)                                                               \
        if (!(i & (h))) {                                                                      \
            const float16 a = r[i], b = r[i + (h)];                                            \
            r[i] = shuffle2(a, b, (uint16)ma);                                                 \
            r[i + (h)] = shuffle2(a, b, (uint16)mb);                                           \
        }
static inline void transpose16(float16 r[16])
{
    SWAP_BLOCKS(8, (0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
                (8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31))
    SWAP_BLOCKS(4, (0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27),
                (4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31))
    SWAP_BLOCKS(2, (0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
                (2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31))
    SWAP_BLOCKS(1, (0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30),
                (1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31))
}
#undef SWAP_BLOCKS

#endif
