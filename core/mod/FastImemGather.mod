COMMENT
nd_gather_imem(index, out): out[i] = fast i_membrane_ (nA) of the node index[i] of thread 0.

Why (neurodamus): an lfp report on the NEURON engine reads every compartment's i_membrane_ at
every report step. Through a PtrVector each value costs a data-handle dereference, ~30 ns on a
4000-cell circuit (a cache miss each); the values live contiguously in NEURON's node storage
(nrn_calc_fast_imem writes them to sav_rhs), so reading them by node index (seg.node_index())
costs ~1 ns. Returns the number of values copied, or -1 when this build cannot (NEURON
before 9, more than one thread: the caller then uses the PtrVector). The driver compares the
two ways once before relying on this one.
Under CoreNEURON the function is empty (lfp reports record there through NEURON vectors).
ENDCOMMENT

NEURON {
    SUFFIX nothing
}

VERBATIM
#if !defined(CORENEURON_BUILD) && defined(__has_include)
#if __has_include("nrnversionmacros.h")
#include "nrnversionmacros.h"
#if NRN_VERSION_GTEQ(9, 0, 0)
#define ND_GATHER_IMEM 1
#include "multicore.h"
#endif
#endif
#endif
ENDVERBATIM

FUNCTION nd_gather_imem() {
VERBATIM
    _lnd_gather_imem = -1;
#ifdef ND_GATHER_IMEM
    if (nrn_nthread == 1 && nrn_threads[0].node_sav_rhs_storage()) {
        void* index = vector_arg(1);
        void* out = vector_arg(2);
        int n = vector_capacity(index);
        if (vector_capacity(out) >= n) {
            const double* where = vector_vec(index);
            double* to = vector_vec(out);
            const double* imem = nrn_threads[0].node_sav_rhs_storage();
            int end = nrn_threads[0].end;
            for (int i = 0; i < n; ++i) {
                int k = (int) where[i];
                to[i] = (k >= 0 && k < end) ? imem[k] : 0.0;
            }
            _lnd_gather_imem = n;
        }
    }
#endif
ENDVERBATIM
}
