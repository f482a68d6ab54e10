COMMENT
VecStim: an artificial cell that emits one event at each time stored with play(vec).

Usage (hoc or Python):
    vs = new VecStim()
    vs.play(tvec)      : tvec holds event times in ms, sorted ascending
    vs.play()          : forget the stored times

Design notes (neurodamus):
- play() COPIES the times.  Changing the Vector afterwards has no effect on
  this VecStim until play() is called again; freeing the Vector is safe.
- At INITIAL every time earlier than t is dropped; equal times give one event
  each.  A time that is smaller than its predecessor is delivered at the
  current time (never in the past).
- NEURON has no built-in VecStim, and CoreNEURON's built-in mechanisms are
  only IClamp, SEClamp, NetStim, PatternStim, hh, pas, ExpSyn and Exp2Syn
  (NEURON 9.0.2 wheel, share/modfile).  So this name does not clash with
  `nrnivmodl -coreneuron`.
- CoreNEURON: the copied times live in a malloc'ed block [n, t0, t1, ...] behind
  the BBCOREPOINTER `ptr`; bbcore_write/bbcore_read move it to CoreNEURON
  (one int = n, then n doubles).  The CoreNEURON copy is freed by the
  process exit only (CoreNEURON does not run DESTRUCTOR blocks).
ENDCOMMENT

NEURON {
    THREADSAFE
    ARTIFICIAL_CELL VecStim
    BBCOREPOINTER ptr
}

ASSIGNED {
    ev_index    : index of the next stored time, or -1 when exhausted
    etime (ms)  : time of the next event
    ptr
}

INITIAL {
    ev_index = 0
    next_time()
    while (ev_index >= 0 && etime < t) {
        next_time()
    }
    if (ev_index >= 0) {
        net_send(etime - t, 1)
    }
}

NET_RECEIVE (w) {
    if (flag == 1) {
        net_event(t)
        next_time()
        if (ev_index >= 0) {
            if (etime < t) {
                etime = t
            }
            net_send(etime - t, 1)
        }
    }
}

: Load the next stored time into etime, or set ev_index = -1 when none is left.
PROCEDURE next_time() {
VERBATIM
    {
        const double* blk_ = (const double*) _p_ptr;
        int n_ = blk_ ? (int) blk_[0] : 0;
        int k_ = (int) ev_index;
        if (k_ >= 0 && k_ < n_) {
            etime = blk_[1 + k_];
            ev_index = k_ + 1;
        } else {
            ev_index = -1;
        }
    }
ENDVERBATIM
}

PROCEDURE play() {
VERBATIM
#ifndef CORENEURON_BUILD
    {
        double* old_ = (double*) _p_ptr;
        _p_ptr = nullptr;
        if (old_) {
            free(old_);
        }
        if (ifarg(1)) {
            IvocVect* vec_ = vector_arg(1);
            int n_ = vector_capacity(vec_);
            const double* src_ = vector_vec(vec_);
            double* blk_ = (double*) malloc(sizeof(double) * (n_ + 1));
            blk_[0] = (double) n_;
            for (int i_ = 0; i_ < n_; ++i_) {
                blk_[1 + i_] = src_[i_];
            }
            _p_ptr = (void*) blk_;
        }
    }
#endif
ENDVERBATIM
}

DESTRUCTOR {
VERBATIM
#ifndef CORENEURON_BUILD
    {
        double* old_ = (double*) _p_ptr;
        _p_ptr = nullptr;
        if (old_) {
            free(old_);
        }
    }
#endif
ENDVERBATIM
}

VERBATIM
#include <cstdlib>

/* Serialisation for CoreNEURON: ints = [n], doubles = [t0 .. tn-1].
   Called once with null arrays to count, then again to fill. */
static void bbcore_write(double* xarray, int* iarray, int* xoffset, int* ioffset, _threadargsproto_) {
    const double* blk_ = (const double*) _p_ptr;
    int n_ = blk_ ? (int) blk_[0] : 0;
    if (iarray) {
        iarray[*ioffset] = n_;
    }
    if (xarray) {
        for (int i_ = 0; i_ < n_; ++i_) {
            xarray[*xoffset + i_] = blk_[1 + i_];
        }
    }
    *ioffset += 1;
    *xoffset += n_;
}

static void bbcore_read(double* xarray, int* iarray, int* xoffset, int* ioffset, _threadargsproto_) {
    int n_ = iarray[*ioffset];
    double* blk_ = (double*) malloc(sizeof(double) * (n_ + 1));
    blk_[0] = (double) n_;
    for (int i_ = 0; i_ < n_; ++i_) {
        blk_[1 + i_] = xarray[*xoffset + i_];
    }
    _p_ptr = (void*) blk_;
    *ioffset += 1;
    *xoffset += n_;
}
ENDVERBATIM
