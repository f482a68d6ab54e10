/* Force-included (-include) into every mechanism translation unit built by
 * `neurodamus build-mechanisms --vector-math` (NEURODAMUS_VECTOR_MATH=1).
 *
 * CoreNEURON's generated kernels loop over all instances of a mechanism under `#pragma omp
 * simd`, but glibc declares the vector versions of exp/log/pow (libmvec) only under
 * -ffast-math, so without them the loop calls the scalar exp once per instance and is not
 * vectorised (the NMDA magnesium block of ProbAMPANMDA_EMS alone was 30 % of the solver).
 * These declarations name the libmvec variants without -ffast-math: the arithmetic keeps
 * IEEE semantics; only exp/log/pow come from libmvec, within 4 ulp of the scalar ones that
 * NEURON calls, which is why this is not the default (spikes may then differ from NEURON's).
 * NEURON's own kernels are not `omp simd` loops and are unchanged.
 */
#ifndef NEURODAMUS_VECTOR_MATH_H
#define NEURODAMUS_VECTOR_MATH_H
#include <math.h>
#if defined(__x86_64__) && defined(__GLIBC__) && defined(_OPENMP) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 22))
#ifdef __cplusplus
extern "C" {
#endif
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double log(double);
#pragma omp declare simd notinbranch
double pow(double, double);
#ifdef __cplusplus
}
#endif
#endif
#endif
