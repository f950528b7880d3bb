/* reduce.cl: deterministic sums (fixed order for given sizes and work-group size).
 *
 * col_sum_rows: NDRange 2D global (ceil(cols / CS_COLS) * CS_COLS, CS_ROWS * blocks),
 *               local (CS_COLS, CS_ROWS)
 *   reads  dz[rows x cols] (row stride cols) from dz + dz_off
 *   writes out[out_off + blk * cols + col] = alpha * sum of dz[r][col] over the rows r of block
 *          blk = get_group_id(1), rows_per_block rows each (the last one shorter)
 *   One block: out is db itself. Several: out is a blocks x cols scratch and col_sum_finish
 *   adds its rows.
 * col_sum_finish: NDRange (cols)
 *   reads  part[blocks x cols]
 *   writes db[db_off + col] = alpha * sum over blocks of part[blk][col], blk in order
 * reduce_stats: NDRange (get_local_size), one work-group of a power-of-two size, local
 *               scratch of 3 * get_local_size floats
 *   reads  stats[n x 3]
 *   writes out[out_off + c] = sum over rows of stats[r][c], c < 3 */

#ifndef CS_COLS
#define CS_COLS 16
#endif
#ifndef CS_ROWS
#define CS_ROWS 16      /* a power of two */
#endif

__kernel __attribute__((reqd_work_group_size(CS_COLS, CS_ROWS, 1)))
void col_sum_rows(__global const float *dz, const ulong dz_off, const int rows, const int cols,
                  const int rows_per_block, const float alpha, __global float *out,
                  const ulong out_off)
{
    __local float part[CS_ROWS][CS_COLS];
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int col = get_group_id(0) * CS_COLS + tx;
    const int blk = get_group_id(1);
    const int r0 = blk * rows_per_block;
    const int r1 = min(rows, r0 + rows_per_block);
    float s = 0.0f;
    if (col < cols) {
        for (int r = r0 + ty; r < r1; r += CS_ROWS) s += dz[dz_off + (size_t)r * cols + col];
    }
    part[ty][tx] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = CS_ROWS / 2; h > 0; h >>= 1) {
        if (ty < h) part[ty][tx] += part[ty + h][tx];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (ty == 0 && col < cols) out[out_off + (size_t)blk * cols + col] = alpha * part[0][tx];
}

__kernel void col_sum_finish(__global const float *part, const int blocks, const int cols,
                             const float alpha, __global float *db, const ulong db_off)
{
    const int col = get_global_id(0);
    if (col >= cols) return;
    float s = 0.0f;
    for (int b = 0; b < blocks; b++) s += part[(size_t)b * cols + col];
    db[db_off + col] = alpha * s;
}

__kernel void reduce_stats(__global const float *stats, const ulong n, __global float *out,
                           const ulong out_off, __local float *part)
{
    const int lid = get_local_id(0), wg = get_local_size(0);
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f;
    for (size_t r = lid; r < n; r += wg) {
        s0 += stats[r * 3 + 0];
        s1 += stats[r * 3 + 1];
        s2 += stats[r * 3 + 2];
    }
    part[lid] = s0;
    part[wg + lid] = s1;
    part[2 * wg + lid] = s2;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = wg / 2; h > 0; h >>= 1) {
        if (lid < h) {
            part[lid] += part[lid + h];
            part[wg + lid] += part[wg + lid + h];
            part[2 * wg + lid] += part[2 * wg + lid + h];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        out[out_off + 0] = part[0];
        out[out_off + 1] = part[wg];
        out[out_off + 2] = part[2 * wg];
    }
}
