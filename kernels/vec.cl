/* vec.cl: VW-wide float vectors along a contiguous dimension, for the kernels written for
 * devices that run work-items as loops over SIMD lanes (layers.cl, fused_step.cl). Build with
 * -DVW=16, 8, 4, 2 or 1 before including.
 *   floatv         float of VW lanes
 *   LOADF(i, p)    the i-th vector of VW floats at p;  LOADX: of any type, converted to float
 *   STOREF(v, i, p)  stores it;  HSUM(v)  the sum of its lanes in a fixed order
 *   ANY_NONZERO(v)   whether a lane is not zero */
#ifndef CLTRAIN_VEC_CL
#define CLTRAIN_VEC_CL

#ifndef VW
#define VW 1
#endif

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

#if VW == 1
typedef float floatv;
#define LOADF(i, p) ((p)[i])
#define LOADX(i, p) ((float)(p)[i])
#define STOREF(v, i, p) ((p)[i] = (v))
#define HSUM(v) (v)
#define ANY_NONZERO(v) ((v) != 0.0f)
#else
typedef CAT(float, VW) floatv;
#define LOADF(i, p) CAT(vload, VW)(i, p)
#define LOADX(i, p) CAT(convert_float, VW)(CAT(vload, VW)(i, p))
#define STOREF(v, i, p) CAT(vstore, VW)(v, i, p)
#define ANY_NONZERO(v) any((v) != 0.0f)
#endif

#if VW == 2
#define HSUM(v) ((v).s0 + (v).s1)
#elif VW == 4
#define HSUM(v) (((v).s0 + (v).s1) + ((v).s2 + (v).s3))
#elif VW == 8
#define HSUM(v) ((((v).s0 + (v).s1) + ((v).s2 + (v).s3)) + (((v).s4 + (v).s5) + ((v).s6 + (v).s7)))
#elif VW == 16
#define HSUM(v) HSUM8((v).lo + (v).hi)
#define HSUM8(w) ((((w).s0 + (w).s1) + ((w).s2 + (w).s3)) + (((w).s4 + (w).s5) + ((w).s6 + (w).s7)))
#endif

#endif
