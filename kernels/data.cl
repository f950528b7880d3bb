/* data.cl: moving pixel rows on the device.
 *
 * gather_rows: NDRange (m * rowlen)
 *   reads  src[src_rows x rowlen] (uchar), idx[m] (uint) from idx + idx_off
 *   writes dst[m x rowlen]: dst[i][:] = src[idx[i]][:]; an index >= src_rows gives a zero row
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

__kernel void u8_to_f32(__global const uchar *src, __global float *dst, const ulong n)
{
    const size_t i = get_global_id(0);
    if (i >= n) return;
    dst[i] = (float)src[i];
}
