COMMENT
ProbAMPANMDA_EMS: glutamatergic synapse (AMPA + NMDA) with stochastic,
multivesicular Tsodyks-Markram release.  Written for the neurodamus minicol
example model.

Conductances
  AMPA: double exponential, tau_r_AMPA = 0.2 ms, tau_d_AMPA = 1.7 ms.
  NMDA: double exponential, tau_r_NMDA = 0.29 ms, tau_d_NMDA = 43 ms, with the
        Jahr & Stevens (1990) magnesium block
        mggate = 1 / (1 + exp(-0.062 v) * mg / 3.57),  mg = 1 mM.
  Each released vesicle adds to the AMPA conductance a double exponential whose
  peak is `weight` (uS), NetCon.weight[0] (the SONATA edge `conductance`, in
  uS), and to the NMDA conductance NMDA_ratio times that (before the Mg block).
  Several vesicles released together add up.  `gmax` (default 0.001 uS) is
  kept for interface compatibility and does not enter the conductance.
  i = i_AMPA + i_NMDA, i_X = g_X (v - e), e = 0 mV.

Release (per synapse, shared by all NetCons that target it)
  Nrrp release sites, each either occupied by a vesicle or empty.  On every
  presynaptic event (NetCon flag 0) at time t, with dt_ = t - tsyn:
  1. facilitation: u = u exp(-dt_/Fac) (u = 0 when Fac <= 0), then
     u = u + Use (1 - u);
  2. recovery: each empty site is refilled with probability
     1 - exp(-dt_/Dep) (always when Dep <= 0): one uniform draw per empty site;
  3. release: each occupied site releases with probability u: one uniform
     draw per occupied site;
  4. tsyn = t.
  At INITIAL all sites are occupied, u = u0, tsyn = 0 and the stream is reset.
  Uniform draws come from the Random123 stream `rng` (NMODL RANDOM), set with
  setRNG(id1, id2, id3).  With Use = 1 and Nrrp = 1 the first event always
  releases one vesicle.

NetCon weight vector: NET_RECEIVE (weight, weight_AMPA, weight_NMDA, nreleased,
nc_type, delay_idx)
  [0] weight       peak conductance per vesicle (uS), set by the driver
  [1] weight_AMPA  peak AMPA conductance added by this NetCon's last event (uS)
  [2] weight_NMDA  same for NMDA (uS, before the Mg block)
  [3] nreleased    vesicles released by this NetCon's last event
  [4] nc_type      0 presynaptic, 1 spontaneous mini, 2 replay (set by the
                   driver at the index given by the hoc global
                   nc_type_param_ProbAMPANMDA_EMS = 4)
  [5] delay_idx    internal: next delayed weight change of this NetCon

Delayed weight changes: setup_delay_vecs(vdelays, vweights) stores sorted
absolute times (ms) and weight factors.  Every presynaptic NetCon (nc_type 0)
schedules a self-event at each time and then sets its own weight[0] to
conductance * factor.  The vectors are copied.

CoreNEURON: the stream is an NMODL RANDOM variable; the delay table lives in a
malloc'ed block [n, t.., w..] behind BBCOREPOINTER `delay_tbl` and is moved by
bbcore_write/bbcore_read (ints [n], doubles [t.., w..]).  CoreNEURON 9.0.2 has
no nrnran123_setids, so setRNG is a no-op in the CoreNEURON build: it is only
ever called from hoc on the NEURON side, and the stream ids travel with the
model.
ENDCOMMENT

NEURON {
    THREADSAFE
    POINT_PROCESS ProbAMPANMDA_EMS
    RANGE tau_r_AMPA, tau_d_AMPA, tau_r_NMDA, tau_d_NMDA
    RANGE Use, u, Dep, Fac, u0, Nrrp, mg, NMDA_ratio, e
    RANGE i, i_AMPA, i_NMDA, g_AMPA, g_NMDA, g, mggate
    RANGE gmax, conductance, synapseID, selected_for_report, verboseLevel
    RANGE tsyn, occupied, unoccupied, nreleased_total
    GLOBAL nc_type_param
    NONSPECIFIC_CURRENT i
    RANDOM rng
    BBCOREPOINTER delay_tbl
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
    (mM) = (milli/liter)
}

PARAMETER {
    tau_r_AMPA = 0.2 (ms)
    tau_d_AMPA = 1.7 (ms)
    tau_r_NMDA = 0.29 (ms)
    tau_d_NMDA = 43 (ms)
    Use = 1.0 (1)           : utilisation of synaptic efficacy
    Dep = 100 (ms)          : recovery time constant of a release site
    Fac = 10 (ms)           : facilitation time constant
    u0 = 0 (1)              : initial u
    Nrrp = 1 (1)            : number of release sites
    mg = 1 (mM)
    NMDA_ratio = 0.71 (1)
    e = 0 (mV)
    gmax = 0.001 (uS)       : unused, kept for interface compatibility
    conductance = 0 (uS)    : edge conductance, set by the driver (delayed weights)
    synapseID = 0
    selected_for_report = 0
    verboseLevel = 0
    nc_type_param = 4       : index of nc_type in the NetCon weight vector
}

ASSIGNED {
    v (mV)
    i (nA)
    i_AMPA (nA)
    i_NMDA (nA)
    g_AMPA (uS)
    g_NMDA (uS)
    g (uS)
    mggate
    factor_AMPA
    factor_NMDA
    u (1)                   : running utilisation
    tsyn (ms)               : time of the last presynaptic event
    occupied                : occupied release sites
    unoccupied              : empty release sites
    nreleased_total         : vesicles released since INITIAL
    next_delay_t (ms)       : filled by delay_entry()
    next_delay_w
    delay_tbl
}

STATE {
    A_AMPA (uS)
    B_AMPA (uS)
    A_NMDA (uS)
    B_NMDA (uS)
}

VERBATIM
#include <cstdlib>

#ifdef CORENEURON_BUILD
/* CoreNEURON 9.0.2 has no nrnran123_setids: setRNG is only called from hoc on
   the NEURON side, so its CoreNEURON copy does nothing. */
#define nrnran123_setids(s_, i1_, i2_, i3_) ((void) 0)
#endif

/* delay table block: [n, t0 .. tn-1, w0 .. wn-1] */
static void bbcore_write(double* xarray, int* iarray, int* xoffset, int* ioffset, _threadargsproto_) {
    const double* blk_ = (const double*) _p_delay_tbl;
    int n_ = blk_ ? (int) blk_[0] : 0;
    if (iarray) {
        iarray[*ioffset] = n_;
    }
    if (xarray) {
        for (int i_ = 0; i_ < 2 * n_; ++i_) {
            xarray[*xoffset + i_] = blk_[1 + i_];
        }
    }
    *ioffset += 1;
    *xoffset += 2 * n_;
}

static void bbcore_read(double* xarray, int* iarray, int* xoffset, int* ioffset, _threadargsproto_) {
    int n_ = iarray[*ioffset];
    double* blk_ = nullptr;
    if (n_ > 0) {
        blk_ = (double*) malloc(sizeof(double) * (1 + 2 * n_));
        blk_[0] = (double) n_;
        for (int i_ = 0; i_ < 2 * n_; ++i_) {
            blk_[1 + i_] = xarray[*xoffset + i_];
        }
    }
    _p_delay_tbl = (void*) blk_;
    *ioffset += 1;
    *xoffset += 2 * n_;
}
ENDVERBATIM

INITIAL {
    LOCAL tp
    A_AMPA = 0
    B_AMPA = 0
    A_NMDA = 0
    B_NMDA = 0

    tp = (tau_r_AMPA * tau_d_AMPA) / (tau_d_AMPA - tau_r_AMPA) * log(tau_d_AMPA / tau_r_AMPA)
    factor_AMPA = 1 / (-exp(-tp / tau_r_AMPA) + exp(-tp / tau_d_AMPA))
    tp = (tau_r_NMDA * tau_d_NMDA) / (tau_d_NMDA - tau_r_NMDA) * log(tau_d_NMDA / tau_r_NMDA)
    factor_NMDA = 1 / (-exp(-tp / tau_r_NMDA) + exp(-tp / tau_d_NMDA))

    random_setseq(rng, 0)
    u = u0
    tsyn = 0
    occupied = Nrrp
    unoccupied = 0
    nreleased_total = 0
}

BREAKPOINT {
    SOLVE state METHOD cnexp
    mggate = 1 / (1 + exp(0.062 (/mV) * -v) * (mg / 3.57 (mM)))
    g_AMPA = B_AMPA - A_AMPA
    g_NMDA = (B_NMDA - A_NMDA) * mggate
    g = g_AMPA + g_NMDA
    i_AMPA = g_AMPA * (v - e)
    i_NMDA = g_NMDA * (v - e)
    i = i_AMPA + i_NMDA
}

DERIVATIVE state {
    A_AMPA' = -A_AMPA / tau_r_AMPA
    B_AMPA' = -B_AMPA / tau_d_AMPA
    A_NMDA' = -A_NMDA / tau_r_NMDA
    B_NMDA' = -B_NMDA / tau_d_NMDA
}

NET_RECEIVE (weight, weight_AMPA, weight_NMDA, nreleased, nc_type, delay_idx) {
    LOCAL dt_, p_rec, k, nrel
    INITIAL {
        weight_AMPA = 0
        weight_NMDA = 0
        nreleased = 0
        delay_idx = 0
        if (nc_type == 0) {
            delay_entry(0)
            if (next_delay_t >= 0) {
                net_send(next_delay_t, 1)
            }
        }
    }
    if (flag == 1) {
        : delayed weight change of this (presynaptic) NetCon
        delay_entry(delay_idx)
        if (next_delay_t >= 0) {
            weight = conductance * next_delay_w
            delay_idx = delay_idx + 1
            delay_entry(delay_idx)
            if (next_delay_t >= 0) {
                if (next_delay_t < t) {
                    next_delay_t = t
                }
                net_send(next_delay_t - t, 1)
            }
        }
    } else if (flag == 0) {
        dt_ = t - tsyn
        : 1. facilitation
        if (Fac > 0) {
            u = u * exp(-dt_ / Fac)
        } else {
            u = 0
        }
        u = u + Use * (1 - u)
        : 2. stochastic recovery of the empty sites
        if (Dep > 0) {
            p_rec = 1 - exp(-dt_ / Dep)
        } else {
            p_rec = 1
        }
        k = unoccupied
        while (k > 0) {
            if (random_uniform(rng) < p_rec) {
                unoccupied = unoccupied - 1
                occupied = occupied + 1
            }
            k = k - 1
        }
        : 3. release from the occupied sites
        nrel = 0
        k = occupied
        while (k > 0) {
            if (random_uniform(rng) < u) {
                nrel = nrel + 1
            }
            k = k - 1
        }
        occupied = occupied - nrel
        unoccupied = unoccupied + nrel
        tsyn = t
        nreleased = nrel
        nreleased_total = nreleased_total + nrel
        weight_AMPA = weight * nrel
        weight_NMDA = weight_AMPA * NMDA_ratio
        if (nrel > 0) {
            A_AMPA = A_AMPA + weight * nrel * factor_AMPA
            B_AMPA = B_AMPA + weight * nrel * factor_AMPA
            A_NMDA = A_NMDA + weight * nrel * NMDA_ratio * factor_NMDA
            B_NMDA = B_NMDA + weight * nrel * NMDA_ratio * factor_NMDA
        }
    }
}

PROCEDURE setRNG(id1, id2, id3) {
    random_setids(rng, id1, id2, id3)
    random_setseq(rng, 0)
}

: next_delay_t, next_delay_w = entry k of the delay table (-1, 0 past its end)
PROCEDURE delay_entry(k) {
VERBATIM
    {
        const double* blk_ = (const double*) _p_delay_tbl;
        int n_ = blk_ ? (int) blk_[0] : 0;
        int k_ = (int) _lk;
        if (k_ >= 0 && k_ < n_) {
            next_delay_t = blk_[1 + k_];
            next_delay_w = blk_[1 + n_ + k_];
        } else {
            next_delay_t = -1;
            next_delay_w = 0;
        }
    }
ENDVERBATIM
}

: setup_delay_vecs(vdelays, vweights): copy the delayed weight-change table
: (times in ms, ascending; weight factors).  No argument: clear it.
PROCEDURE setup_delay_vecs() {
VERBATIM
#ifndef CORENEURON_BUILD
    {
        double* old_ = (double*) _p_delay_tbl;
        _p_delay_tbl = nullptr;
        if (old_) {
            free(old_);
        }
        if (ifarg(2)) {
            IvocVect* vt_ = vector_arg(1);
            IvocVect* vw_ = vector_arg(2);
            int n_ = vector_capacity(vt_);
            if (vector_capacity(vw_) < n_) {
                n_ = vector_capacity(vw_);
            }
            if (n_ > 0) {
                const double* pt_ = vector_vec(vt_);
                const double* pw_ = vector_vec(vw_);
                double* blk_ = (double*) malloc(sizeof(double) * (1 + 2 * n_));
                blk_[0] = (double) n_;
                for (int i_ = 0; i_ < n_; ++i_) {
                    blk_[1 + i_] = pt_[i_];
                    blk_[1 + n_ + i_] = pw_[i_];
                }
                _p_delay_tbl = (void*) blk_;
            }
        }
    }
#endif
ENDVERBATIM
}

DESTRUCTOR {
VERBATIM
#ifndef CORENEURON_BUILD
    {
        double* old_ = (double*) _p_delay_tbl;
        _p_delay_tbl = nullptr;
        if (old_) {
            free(old_);
        }
    }
#endif
ENDVERBATIM
}
