COMMENT
InhPoissonStim: inhomogeneous Poisson event generator (spontaneous minis).

Method: thinning.  Candidate events form a homogeneous Poisson process at the
maximal rate rmax; each candidate at time t is kept when u < rate(t)/rmax.

    stim = new InhPoissonStim()
    stim.setRNGs(e1, e2, e3, u1, u2, u3)  : Random123 ids of the exponential
                                          : (inter-event) and uniform
                                          : (acceptance) streams
    stim.setTbins(tvec)                   : bin start times, ms, ascending
    stim.setRate(rvec)                    : rate of each bin, Hz
    stim.duration = tstop                 : no candidate after this time

rate(t) = rates[k] for the last bin with tbins[k] <= t (0 before the first bin);
rmax = max(rates).

Behaviour (neurodamus compatibility contract, section 3.9):
- INITIAL resets both streams to sequence 0 and discards one exponential draw.
- Each inter-event interval is 1000/rmax * negexp(1) ms (one exponential draw).
- Each candidate draws one uniform (always, even when rate == rmax) and emits
  net_event when uniform < rate(t)/rmax.
- Candidates later than `duration` are not scheduled.  With rmax <= 0 nothing
  is scheduled.

CoreNEURON: the two streams are NMODL RANDOM variables (their ids and sequence
travel with the model).  The bins and rates live in a malloc'ed block
[nt, nr, t0.., r0..] behind BBCOREPOINTER `ptr`, sent with bbcore_write/read
(ints [nt, nr], doubles [t.., r..]).  Vectors are copied by setTbins/setRate.
ENDCOMMENT

NEURON {
    THREADSAFE
    ARTIFICIAL_CELL InhPoissonStim
    RANGE duration, rmax, rate
    BBCOREPOINTER ptr
    RANDOM exp_rng, unif_rng
}

PARAMETER {
    duration = 1e9 (ms)
}

ASSIGNED {
    rmax (/s)   : maximal rate over all bins
    rate (/s)   : rate of the bin holding the last candidate (set by rate_at)
    ptr
}

VERBATIM
#include <cstdlib>

#ifdef CORENEURON_BUILD
/* CoreNEURON (NEURON 9.0.2) has no nrnran123_setids, so `random_setids` in
   setRNGs does not compile there.  setRNGs is only ever called from hoc, on
   the NEURON side; CoreNEURON receives the stream ids with the model.  So the
   CoreNEURON copy of setRNGs may safely do nothing. */
#define nrnran123_setids(s_, i1_, i2_, i3_) ((void) 0)
#endif

#ifndef CORENEURON_BUILD
/* Replace part `which` (0 = time bins, 1 = rates) of the block in `slot` with
   the Vector given as hoc argument 1 (no argument: empty). */
static void inhpoisson_store_(void*& slot, int which) {
    const double* old_ = (const double*) slot;
    int n_old[2] = {0, 0};
    const double* p_old[2] = {nullptr, nullptr};
    if (old_) {
        n_old[0] = (int) old_[0];
        n_old[1] = (int) old_[1];
        p_old[0] = old_ + 2;
        p_old[1] = old_ + 2 + n_old[0];
    }
    int n_new = 0;
    const double* p_new = nullptr;
    if (ifarg(1)) {
        IvocVect* vec_ = vector_arg(1);
        n_new = vector_capacity(vec_);
        p_new = vector_vec(vec_);
    }
    int n[2] = {n_old[0], n_old[1]};
    const double* p[2] = {p_old[0], p_old[1]};
    n[which] = n_new;
    p[which] = p_new;
    double* blk_ = (double*) malloc(sizeof(double) * (2 + n[0] + n[1]));
    blk_[0] = (double) n[0];
    blk_[1] = (double) n[1];
    for (int i_ = 0; i_ < n[0]; ++i_) {
        blk_[2 + i_] = p[0][i_];
    }
    for (int i_ = 0; i_ < n[1]; ++i_) {
        blk_[2 + n[0] + i_] = p[1][i_];
    }
    slot = (void*) blk_;
    if (old_) {
        free((void*) old_);
    }
}
#endif

/* CoreNEURON serialisation: ints [nt, nr], doubles [tbins.., rates..].
   Called once with null arrays to count, then again to fill. */
static void bbcore_write(double* xarray, int* iarray, int* xoffset, int* ioffset, _threadargsproto_) {
    const double* blk_ = (const double*) _p_ptr;
    int nt_ = blk_ ? (int) blk_[0] : 0;
    int nr_ = blk_ ? (int) blk_[1] : 0;
    if (iarray) {
        iarray[*ioffset] = nt_;
        iarray[*ioffset + 1] = nr_;
    }
    if (xarray) {
        for (int i_ = 0; i_ < nt_ + nr_; ++i_) {
            xarray[*xoffset + i_] = blk_[2 + i_];
        }
    }
    *ioffset += 2;
    *xoffset += nt_ + nr_;
}

static void bbcore_read(double* xarray, int* iarray, int* xoffset, int* ioffset, _threadargsproto_) {
    int nt_ = iarray[*ioffset];
    int nr_ = iarray[*ioffset + 1];
    double* blk_ = (double*) malloc(sizeof(double) * (2 + nt_ + nr_));
    blk_[0] = (double) nt_;
    blk_[1] = (double) nr_;
    for (int i_ = 0; i_ < nt_ + nr_; ++i_) {
        blk_[2 + i_] = xarray[*xoffset + i_];
    }
    _p_ptr = (void*) blk_;
    *ioffset += 2;
    *xoffset += nt_ + nr_;
}
ENDVERBATIM

INITIAL {
    LOCAL discard, isi
    random_setseq(exp_rng, 0)
    random_setseq(unif_rng, 0)
    update_rmax()
    discard = random_negexp(exp_rng)
    isi = next_isi()
    if (isi >= 0) {
        net_send(isi, 1)
    }
}

NET_RECEIVE (w) {
    LOCAL u, isi
    if (flag == 1) {
        u = random_uniform(unif_rng)
        rate_at(t)
        if (u < rate / rmax) {
            net_event(t)
        }
        isi = next_isi()
        if (isi >= 0) {
            net_send(isi, 1)
        }
    }
}

FUNCTION next_isi() (ms) {
    : draws the next inter-event interval; -1 when no candidate is to come
    next_isi = -1
    if (rmax > 0) {
        next_isi = 1000 (ms/s) / rmax * random_negexp(exp_rng)
        if (t + next_isi > duration) {
            next_isi = -1
        }
    }
}

PROCEDURE setRNGs(e1, e2, e3, u1, u2, u3) {
    random_setids(exp_rng, e1, e2, e3)
    random_setseq(exp_rng, 0)
    random_setids(unif_rng, u1, u2, u3)
    random_setseq(unif_rng, 0)
}

: rmax = max(rates), 0 when there is no rate
PROCEDURE update_rmax() {
VERBATIM
    {
        const double* blk_ = (const double*) _p_ptr;
        double m_ = 0.0;
        if (blk_) {
            int nt_ = (int) blk_[0];
            int nr_ = (int) blk_[1];
            const double* r_ = blk_ + 2 + nt_;
            for (int i_ = 0; i_ < nr_; ++i_) {
                if (i_ == 0 || r_[i_] > m_) {
                    m_ = r_[i_];
                }
            }
        }
        rmax = m_;
    }
ENDVERBATIM
}

: rate = rate of the last bin starting at or before tt
PROCEDURE rate_at(tt (ms)) {
VERBATIM
    {
        const double* blk_ = (const double*) _p_ptr;
        double r_now_ = 0.0;
        if (blk_) {
            int nt_ = (int) blk_[0];
            int nr_ = (int) blk_[1];
            int n_ = nt_ < nr_ ? nt_ : nr_;
            const double* tb_ = blk_ + 2;
            const double* r_ = blk_ + 2 + nt_;
            for (int i_ = 0; i_ < n_ && tb_[i_] <= _ltt; ++i_) {
                r_now_ = r_[i_];
            }
        }
        rate = r_now_;
    }
ENDVERBATIM
}

PROCEDURE setTbins() {
VERBATIM
#ifndef CORENEURON_BUILD
    inhpoisson_store_(_p_ptr, 0);
#endif
ENDVERBATIM
    update_rmax()
}

PROCEDURE setRate() {
VERBATIM
#ifndef CORENEURON_BUILD
    inhpoisson_store_(_p_ptr, 1);
#endif
ENDVERBATIM
    update_rmax()
}

DESTRUCTOR {
VERBATIM
#ifndef CORENEURON_BUILD
    {
        void* old_ = _p_ptr;
        _p_ptr = nullptr;
        if (old_) {
            free(old_);
        }
    }
#endif
ENDVERBATIM
}
