/* rng.cl: device twin of src/rng.c (same function of seed, stream, counter).
 * Included textually by kernels that need random numbers (see clrt: programs are built from one
 * file, so users prepend this file's text by building with it concatenated). */
static inline ulong rng_mix64(ulong z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
    return z ^ (z >> 31);
}

static inline ulong rng_bits(ulong seed, ulong stream, ulong counter)
{
    ulong key = rng_mix64(seed + 0x9e3779b97f4a7c15UL * (stream + 1));
    return rng_mix64(key ^ (counter * 0xd1342543de82ef95UL + 0x632be59bd9b4e019UL));
}

static inline float rng_uniform(ulong seed, ulong stream, ulong counter)
{
    return (float)(rng_bits(seed, stream, counter) >> 40) * (1.0f / 16777216.0f);
}

/* v under inverted dropout with drop rate p: kept (times keep_scale) where the draw at
 * (seed, stream, i) is at least p, else 0; the dropout kernel and the fused step share it, so
 * their masks are the same. */
static inline float rng_dropout(const float v, const float p, const float keep_scale,
                                ulong seed, ulong stream, ulong i)
{
    return rng_uniform(seed, stream, i) >= p ? v * keep_scale : 0.0f;
}
