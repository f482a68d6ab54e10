COMMENT
NdCoreImemGather: under CoreNEURON, copies the fast i_membrane_ (nA) of chosen nodes into
buffers of the driver at report steps, inside CoreNEURON's step.

Why (neurodamus): an lfp report needs every compartment's membrane current at its report
steps. CoreNEURON runs its step loop without Python, and recording the currents with per-step
Vector.record copies every compartment back into NEURON at every step (and NEURON's set-up of
n recordings is O(n^2)). Instead the driver creates one instance of this point process per
rank before initialisation; CoreNEURON then calls nd_core_imem_gather_step() once per step
(BEFORE STEP: after the step's currents are computed, where CoreNEURON also records), which
copies the currents of report steps only, by node index, into row buffers the driver
registered through ctypes (nd_core_imem_gather_set) before the psolve, and those of the
psolve's last step into a vector the driver compares with the currents CoreNEURON hands back
to NEURON. Node indices are
NEURON's (seg.node_index()); CoreNEURON's node permutation (--cell-permute) is applied here.
Rows already filled (the t = 0 row NEURON takes at initialisation, a restored row) are left
alone. When a report row finds the buffer full and the driver registered a flush for the slot
(nd_core_imem_gather_on_full), CoreNEURON's step calls it: the driver writes the held rows and
returns the row the buffer starts at from then on, so one psolve covers the whole run (each
psolve transfers the model) with a buffer of a few rows. The call happens at the same report
step on every rank (all ranks take part in its collectives); a negative return (the flush
failed, on every rank) stops the gather and CoreNEURON's run (stoprun) after the current
minimum-delay interval, on every rank alike.
With a plan (nd_core_imem_gather_plan, after nd_core_imem_gather_set) the currents are computed
from the voltages instead, as FastImemGather.mod's nd_gather_axial does on NEURON (same plan in
NEURON's node indices, same terms in the same order: both engines give identical values), and
CoreNEURON needs no fast i_membrane_.
The instance has no state: checkpoints hold nothing of it.
The NEURON build does nothing (the NEURON engine reads the currents with nd_gather_imem or
nd_gather_axial, FastImemGather.mod).
ENDCOMMENT

NEURON {
    THREADSAFE
    POINT_PROCESS NdCoreImemGather
}

VERBATIM
#ifdef CORENEURON_BUILD
#define ND_MAX_GATHERS 64

typedef struct {
    int n;                  /* nodes per row */
    const int* index;       /* NEURON node index of each column */
    double* rows;           /* [capacity x n], row-major, owned by the driver */
    unsigned char* have;    /* [capacity]: row filled */
    long capacity;
    long first_step, period, n_steps, first_row;
    double step_ms;
    double* last;           /* [n]: the currents of step last_step */
    long last_step;
    long overflow;          /* report rows beyond the capacity (not copied) */
    long bad;               /* node indices outside the thread (copied as NaN) */
    long (*on_full)(int slot, long row);   /* the driver's flush: the new first_row, or < 0 */
    const int* plan;        /* axial currents from the voltages (see above), or 0: fast imem */
    long plan_len;
} NdImemGather;

static NdImemGather nd_gathers[ND_MAX_GATHERS];

extern "C" __attribute__((visibility("default")))
int nd_core_imem_gather_set(int slot, int n, const int* index, double* rows,
                            unsigned char* have, long capacity, long first_step, long period,
                            long n_steps, long first_row, double step_ms, double* last,
                            long last_step) {
    if (slot < 0 || slot >= ND_MAX_GATHERS || n < 0 || capacity < 0 || period < 1 || step_ms <= 0) {
        return -1;
    }
    NdImemGather g = {n, index, rows, have, capacity, first_step, period, n_steps, first_row,
                      step_ms, last, last_step, 0, 0, 0, 0, 0};
    nd_gathers[slot] = g;
    return 0;
}

/* after nd_core_imem_gather_set: call fn(slot, row) when report row `row` finds the buffer
   full (every earlier row held); fn returns the buffer's new first row, < 0 to stop */
extern "C" __attribute__((visibility("default")))
int nd_core_imem_gather_on_full(int slot, long (*fn)(int, long)) {
    if (slot < 0 || slot >= ND_MAX_GATHERS) {
        return -1;
    }
    nd_gathers[slot].on_full = fn;
    return 0;
}

/* after nd_core_imem_gather_set: compute the currents from the voltages with `plan` (per
   value: node, parent or -1, number of children, children; NEURON node indices) */
extern "C" __attribute__((visibility("default")))
int nd_core_imem_gather_plan(int slot, const int* plan, long plan_len) {
    if (slot < 0 || slot >= ND_MAX_GATHERS || plan_len < 0) {
        return -1;
    }
    nd_gathers[slot].plan = plan;
    nd_gathers[slot].plan_len = plan_len;
    return 0;
}

/* slot < 0: every slot */
extern "C" __attribute__((visibility("default")))
void nd_core_imem_gather_clear(int slot) {
    for (int s = 0; s < ND_MAX_GATHERS; ++s) {
        if (slot < 0 || s == slot) {
            nd_gathers[s].rows = 0;
            nd_gathers[s].n = 0;
            nd_gathers[s].on_full = 0;
            nd_gathers[s].plan = 0;
            nd_gathers[s].plan_len = 0;
        }
    }
}

/* what = 0: rows beyond the capacity, 1: node indices outside the thread */
extern "C" __attribute__((visibility("default")))
long nd_core_imem_gather_problems(int slot, int what) {
    if (slot < 0 || slot >= ND_MAX_GATHERS) {
        return -1;
    }
    return what == 0 ? nd_gathers[slot].overflow : nd_gathers[slot].bad;
}

static void nd_copy_imem(NdImemGather* g, double* to, const double* imem, const int* permute,
                         int end) {
    for (int i = 0; i < g->n; ++i) {
        int j = g->index[i];
        if (j >= 0 && j < end) {
            to[i] = imem[permute ? permute[j] : j];
        } else {
            to[i] = 0.0 / 0.0;
            ++g->bad;
        }
    }
}

/* CoreNEURON's index of NEURON's node j (the node permutation) */
#define ND_AT(j) (permute ? permute[j] : (j))

static void nd_copy_axial(NdImemGather* g, double* to, const NrnThread* nt, const int* permute,
                          int end) {
    const double* v = nt->_actual_v;
    const double* a = nt->_actual_a;
    const double* b = nt->_actual_b;
    const double* area = nt->_actual_area;
    const int* plan = g->plan;
    long at = 0;
    for (int n = 0; n < g->n; ++n) {
        if (at + 3 > g->plan_len) {
            to[n] = 0.0 / 0.0;
            ++g->bad;
            continue;
        }
        int k = plan[at], p = plan[at + 1], nc = plan[at + 2];
        at += 3;
        if (k < 0 || k >= end || p >= end || nc < 0 || at + nc > g->plan_len) {
            to[n] = 0.0 / 0.0;
            ++g->bad;
            at += nc > 0 ? nc : 0;
            continue;
        }
        int kk = ND_AT(k);
        double i = p >= 0 ? -b[kk] * (v[ND_AT(p)] - v[kk]) : 0.0;
        for (int j = 0; j < nc; ++j) {
            int c = plan[at + j];
            if (c < 0 || c >= end) {
                i = 0.0 / 0.0;
                ++g->bad;
                break;
            }
            int cc = ND_AT(c);
            i += a[cc] * (v[kk] - v[cc]);
        }
        at += nc;
        to[n] = i * area[kk] * 0.01;
    }
}

static void nd_copy_currents(NdImemGather* g, double* to, const NrnThread* nt,
                             const double* imem, const int* permute, int end) {
    if (g->plan) {
        nd_copy_axial(g, to, nt, permute, end);
    } else {
        nd_copy_imem(g, to, imem, permute, end);
    }
}

static void nd_core_imem_gather_step(NrnThread* nt) {
    if (nt->id != 0) {
        return;
    }
    const double* imem = nt->nrn_fast_imem ? nt->nrn_fast_imem->nrn_sav_rhs : 0;
    const int* permute = nt->_permute;
    const int end = nt->end;
    for (int s = 0; s < ND_MAX_GATHERS; ++s) {
        NdImemGather* g = nd_gathers + s;
        if (!g->rows || (!g->plan && !imem)) {
            continue;
        }
        long k = (long) (nt->_t / g->step_ms + 0.5);
        if (k == g->last_step && g->last) {
            nd_copy_currents(g, g->last, nt, imem, permute, end);
        }
        if (k < g->first_step || (k - g->first_step) % g->period) {
            continue;
        }
        long r = (k - g->first_step) / g->period;
        if (r >= g->n_steps || r < g->first_row) {
            continue;
        }
        long col = r - g->first_row;
        if (col >= g->capacity && g->on_full) {
            long first = g->on_full(s, r);   /* writes the held rows, clears their flags */
            if (first < 0) {                  /* failed on every rank: stop alike */
                g->rows = 0;
                g->n = 0;
                stoprun = true;
                continue;
            }
            g->first_row = first;
            col = r - first;
        }
        if (col < 0 || col >= g->capacity) {
            ++g->overflow;
            continue;
        }
        if (g->have[col]) {
            continue;
        }
        nd_copy_currents(g, g->rows + col * (long) g->n, nt, imem, permute, end);
        g->have[col] = 1;
    }
}
#endif
ENDVERBATIM

BEFORE STEP {
VERBATIM
#ifdef CORENEURON_BUILD
    nd_core_imem_gather_step(nt);
#endif
ENDVERBATIM
}
