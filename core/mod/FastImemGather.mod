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

nd_gather_axial(plan, out) computes the same currents from the voltages, without fast
i_membrane_: with the fixed step and secondorder = 0, the step's linear system makes a node's
membrane current equal to the axial current flowing into it (plus any ELECTRODE_CURRENT, which
the driver rules out before using this), and NEURON's own matrix coefficients give it:
  i = 0.01 area_k (-b_k (v_parent - v_k) + sum over children c of a_c (v_k - v_c))   [nA]
(the terms nrn_rhs adds, in a fixed order). Fast i_membrane_ costs five passes over every node
at every step; this costs one pass over the report's nodes at report steps only. plan, per
output value: node k, its parent (-1: none), the number of children, the children.
nd_node_parents(out) gives NEURON's parent index of every node of thread 0 (-1 for roots), from
which the driver builds the plan; nd_node_count() the number of nodes.
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

FUNCTION nd_node_count() {
VERBATIM
    _lnd_node_count = -1;
#ifdef ND_GATHER_IMEM
    if (nrn_nthread == 1) {
        _lnd_node_count = nrn_threads[0].end;
    }
#endif
ENDVERBATIM
}

FUNCTION nd_node_parents() {
VERBATIM
    _lnd_node_parents = -1;
#ifdef ND_GATHER_IMEM
    if (nrn_nthread == 1 && nrn_threads[0]._v_parent_index) {
        void* out = vector_arg(1);
        int end = nrn_threads[0].end;
        int ncell = nrn_threads[0].ncell;
        if (vector_capacity(out) >= end) {
            const int* parent = nrn_threads[0]._v_parent_index;
            double* to = vector_vec(out);
            for (int i = 0; i < end; ++i) {
                to[i] = i < ncell ? -1.0 : (double) parent[i];
            }
            _lnd_node_parents = end;
        }
    }
#endif
ENDVERBATIM
}

FUNCTION nd_gather_axial() {
VERBATIM
    /* returns the number of values, -1: this build cannot, -2: a bad plan */
    _lnd_gather_axial = -1;
#ifdef ND_GATHER_IMEM
    if (nrn_nthread == 1) {
        NrnThread& nt = nrn_threads[0];
        void* plan_vec = vector_arg(1);
        void* out = vector_arg(2);
        const double* plan = vector_vec(plan_vec);
        int len = vector_capacity(plan_vec);
        int cap = vector_capacity(out);
        double* to = vector_vec(out);
        const double* v = nt.node_voltage_storage();
        const double* a = nt.node_a_storage();
        const double* b = nt.node_b_storage();
        const double* area = nt.node_area_storage();
        int end = nt.end;
        int n = 0;
        for (int at = 0; at + 2 < len; ++n) {
            int k = (int) plan[at], p = (int) plan[at + 1], nc = (int) plan[at + 2];
            at += 3;
            if (n >= cap || k < 0 || k >= end || p >= end || nc < 0 || at + nc > len) {
                _lnd_gather_axial = -2;
                return _lnd_gather_axial;
            }
            double i = p >= 0 ? -b[k] * (v[p] - v[k]) : 0.0;
            for (int j = 0; j < nc; ++j) {
                int c = (int) plan[at + j];
                if (c < 0 || c >= end) {
                    _lnd_gather_axial = -2;
                    return _lnd_gather_axial;
                }
                i += a[c] * (v[k] - v[c]);
            }
            at += nc;
            to[n] = i * area[k] * 0.01;
        }
        _lnd_gather_axial = n;
    }
#endif
ENDVERBATIM
}
