/* data.cl: moving pixel rows on the device.
 *
 * gather_rows: NDRange (m * rowlen)
 *   reads  src[src_rows x rowlen] (uchar), idx[m] (uint) from idx + idx_off
 *   writes dst[m x rowlen]: dst[i][:] = src[idx[i]][:]; an index >= src_rows gives a zero row
 * gather_rows16: NDRange (m * rowlen / 16), rowlen a multiple of 16
 *   the same, 16 bytes per work-item (an MNIST row is 49 of them)
 * u8_to_f32: NDRange (n)
 *   reads  src[n] (uchar);  writes dst[n] = (float)src (the float copy CLBlast multiplies) */

__kernel void gather_rows(__global const uchar *src, const uint src_rows, const uint rowlen,
                          __global const uint *idx, const ulong idx_off, const uint m,
                          __global uchar *dst)
{
    const size_t e = get_global_id(0);
    if (e >= (size_t)m * rowlen) return;
    const size_t i = e / rowlen, j = e % rowlen;
    const uint r = idx[idx_off + i];
    dst[e] = r < src_rows ? src[(size_t)r * rowlen + j] : 0;
}

__kernel void gather_rows16(__global const uchar *src, const uint src_rows, const uint rowlen,
                            __global const uint *idx, const ulong idx_off, const uint m,
                            __global uchar *dst)
{
    const size_t e = get_global_id(0), per_row = rowlen / 16;
    if (e >= (size_t)m * per_row) return;
    const size_t i = e / per_row, j = e % per_row;
    const uint r = idx[idx_off + i];
    const uchar16 v = r < src_rows ? vload16(j, src + (size_t)r * rowlen) : (uchar16)(0);
    vstore16(v, e, dst);
}

__kernel void u8_to_f32(__global const uchar *src, __global float *dst, const ulong n)
{
    const size_t i = get_global_id(0);
    if (i >= n) return;
    dst[i] = (float)src[i];
}
