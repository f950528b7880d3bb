/* cl_blast.c: the CLBlast SGEMM call (see cl_runtime.h), with CLBlast's status codes named. */
#include "cl_internal.h"

#include <clblast_c.h>

static const char *clblast_status_name(CLBlastStatusCode s)
{
    switch (s) {
    case CLBlastNotImplemented: return "CLBlastNotImplemented";
    case CLBlastInvalidMatrixA: return "CLBlastInvalidMatrixA";
    case CLBlastInvalidMatrixB: return "CLBlastInvalidMatrixB";
    case CLBlastInvalidMatrixC: return "CLBlastInvalidMatrixC";
    case CLBlastInvalidDimension: return "CLBlastInvalidDimension";
    case CLBlastInvalidLeadDimA: return "CLBlastInvalidLeadDimA";
    case CLBlastInvalidLeadDimB: return "CLBlastInvalidLeadDimB";
    case CLBlastInvalidLeadDimC: return "CLBlastInvalidLeadDimC";
    case CLBlastInsufficientMemoryA: return "CLBlastInsufficientMemoryA";
    case CLBlastInsufficientMemoryB: return "CLBlastInsufficientMemoryB";
    case CLBlastInsufficientMemoryC: return "CLBlastInsufficientMemoryC";
    case CLBlastInsufficientMemoryTemp: return "CLBlastInsufficientMemoryTemp";
    case CLBlastInvalidLocalMemUsage: return "CLBlastInvalidLocalMemUsage";
    case CLBlastNoHalfPrecision: return "CLBlastNoHalfPrecision";
    case CLBlastNoDoublePrecision: return "CLBlastNoDoublePrecision";
    case CLBlastDatabaseError: return "CLBlastDatabaseError";
    case CLBlastUnknownError: return "CLBlastUnknownError";
    case CLBlastUnexpectedError: return "CLBlastUnexpectedError";
    case CLBlastTempBufferAllocFailure: return "CLBlastTempBufferAllocFailure";
    default: return (int)s > -1000 ? clrt_error_name((int)s) : "CLBlast error";
    }
}

bool clrt_clblast_sgemm(clrt_ctx *ctx, bool trans_a, bool trans_b, size_t m, size_t n, size_t k,
                        float alpha, const clrt_buf *a, size_t a_off, size_t lda,
                        const clrt_buf *b, size_t b_off, size_t ldb, float beta,
                        clrt_buf *c, size_t c_off, size_t ldc)
{
    if (ctx->clblast_unusable) return false;
    if (m == 0 || n == 0) return true;
    if (k == 0) return false; /* C = beta*C: CLBlast rejects it, the builtin kernels do it */
    cl_event ev = NULL;
    CLBlastStatusCode s = CLBlastSgemm(CLBlastLayoutRowMajor,
                                       trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                                       trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k,
                                       alpha, a->mem, a_off, lda, b->mem, b_off, ldb, beta, c->mem,
                                       c_off, ldc, &ctx->queue, ctx->opt.profiling ? &ev : NULL);
    if (s == CLBlastNotImplemented || s == CLBlastNoHalfPrecision || s == CLBlastNoDoublePrecision ||
        s == CLBlastInvalidLocalMemUsage) {
        ctx->clblast_unusable = true;
        return false;
    }
    if (s != CLBlastSuccess) {
        bool mem = s == CLBlastTempBufferAllocFailure || s == CLBlastOpenCLOutOfResources ||
                   s == CLBlastOpenCLOutOfHostMemory;
        die(EXIT_RUNTIME, "CLBlastSgemm: status %d (%s) for %zux%zux%zu%s%s (C is '%s'; device %s)%s",
            (int)s, clblast_status_name(s), m, n, k, trans_a ? ", A transposed" : "",
            trans_b ? ", B transposed" : "", c->name, ctx->desc.name, clrt_memory_hint(mem));
    }
    if (ev) clrt_track(ctx, ev, clrt_stat_index(ctx, "clblast_sgemm"));
    return true;
}
