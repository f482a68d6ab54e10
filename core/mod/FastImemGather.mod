COMMENT
nd_gather_imem(index, out): out[i] = fast i_membrane_ (nA) of the node index[i] of thread 0.

Why (neurodamus): an lfp report on the NEURON engine reads every compartment's i_membrane_ at
every report step. Through a PtrVector each value costs a data-handle dereference, ~30 ns on a
4000-cell circuit (a cache miss each); the values live contiguously in NEURON's node storage
(nrn_calc_fast_imem writes them to sav_rhs), so reading them by node index (seg.node_index())
costs ~1 ns. Returns the number of values copied, or -1 when this build cannot (NEURON
before 9, more than one thread: the caller then uses the PtrVector). The driver compares the
two ways once before relying on this one.
In the CoreNEURON build these functions are empty (CoreImemGather.mod gathers there).

nd_gather_axial(slot, out) computes the same currents from the voltages, without fast
i_membrane_: with the fixed step and secondorder = 0, the step's linear system makes a node's
membrane current equal to the axial current flowing into it (plus any ELECTRODE_CURRENT, which
the driver rules out before using this), and NEURON's own matrix coefficients give it:
  i = 0.01 area_k (-b_k (v_parent - v_k) + sum over children c of a_c (v_k - v_c))   [nA]
(the terms nrn_rhs adds, in a fixed order). Fast i_membrane_ costs five passes over every node
at every step; this costs one pass over the report's nodes at report steps only. The plan,
given once per report by nd_axial_plan(slot, plan) (kept as int32, checked then), per output
value: node k, its parent (-1: none), the number of children, the children.
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

VERBATIM
#ifdef ND_GATHER_IMEM
#define ND_AXIAL_SLOTS 64
/* the plans of nd_axial_plan, as int32 (checked against the thread's nodes once) */
static int* nd_axial_plans[ND_AXIAL_SLOTS];
static long nd_axial_lens[ND_AXIAL_SLOTS];
static int nd_axial_counts[ND_AXIAL_SLOTS];   /* values per gather */
static int nd_axial_ends[ND_AXIAL_SLOTS];     /* the thread's node count it was checked for */
#endif
ENDVERBATIM

FUNCTION nd_axial_plan() {
VERBATIM
    /* nd_axial_plan(slot, plan): keep `plan` (see above) for nd_gather_axial(slot, out);
       returns the number of values it gives, -1: this build cannot, -2: a bad plan */
    _lnd_axial_plan = -1;
#ifdef ND_GATHER_IMEM
    int slot = (int) *getarg(1);
    if (nrn_nthread == 1 && slot >= 0 && slot < ND_AXIAL_SLOTS) {
        void* plan_vec = vector_arg(2);
        const double* plan = vector_vec(plan_vec);
        long len = vector_capacity(plan_vec);
        int end = nrn_threads[0].end;
        free(nd_axial_plans[slot]);
        nd_axial_plans[slot] = 0;
        int* copy = (int*) malloc(sizeof(int) * (len ? len : 1));
        int n = 0;
        long at = 0;
        for (; at + 3 <= len; ++n) {
            int k = (int) plan[at], p = (int) plan[at + 1], nc = (int) plan[at + 2];
            if (k < 0 || k >= end || p < -1 || p >= end || nc < 0 || at + 3 + nc > len) {
                break;
            }
            copy[at] = k;
            copy[at + 1] = p;
            copy[at + 2] = nc;
            at += 3;
            for (int j = 0; j < nc; ++j, ++at) {
                int c = (int) plan[at];
                if (c < 0 || c >= end) {
                    at = -1;
                    break;
                }
                copy[at] = c;
            }
            if (at < 0) {
                break;
            }
        }
        if (at != len) {
            free(copy);
            _lnd_axial_plan = -2;
        } else {
            nd_axial_plans[slot] = copy;
            nd_axial_lens[slot] = len;
            nd_axial_counts[slot] = n;
            nd_axial_ends[slot] = end;
            _lnd_axial_plan = n;
        }
    }
#endif
ENDVERBATIM
}

FUNCTION nd_gather_axial() {
VERBATIM
    /* nd_gather_axial(slot, out): the currents of the slot's plan into out; returns their
       number, -1: this build cannot, -2: no plan, or the nodes changed since */
    _lnd_gather_axial = -1;
#ifdef ND_GATHER_IMEM
    int slot = (int) *getarg(1);
    if (nrn_nthread == 1 && slot >= 0 && slot < ND_AXIAL_SLOTS) {
        NrnThread& nt = nrn_threads[0];
        void* out = vector_arg(2);
        const int* q = nd_axial_plans[slot];
        int n = nd_axial_counts[slot];
        if (!q || nd_axial_ends[slot] != nt.end || vector_capacity(out) < n) {
            _lnd_gather_axial = -2;
            return _lnd_gather_axial;
        }
        double* to = vector_vec(out);
        const double* v = nt.node_voltage_storage();
        const double* a = nt.node_a_storage();
        const double* b = nt.node_b_storage();
        const double* area = nt.node_area_storage();
        for (int m = 0; m < n; ++m) {
            int k = q[0], p = q[1], nc = q[2];
            q += 3;
            double vk = v[k];
            double i = p >= 0 ? -b[k] * (v[p] - vk) : 0.0;
            for (int j = 0; j < nc; ++j) {
                int c = q[j];
                i += a[c] * (vk - v[c]);
            }
            q += nc;
            to[m] = i * area[k] * 0.01;
        }
        _lnd_gather_axial = n;
    }
#endif
ENDVERBATIM
}
