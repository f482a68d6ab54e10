COMMENT
EFieldIntegrator: drives the extracellular potential of one segment from a sum of
spatially uniform electric fields (SONATA input `spatially_uniform_e_field`).

One instance per segment; its POINTER `ex` is set to that segment's
`e_extracellular` (the `extracellular` mechanism must be inserted):

    ef = new EFieldIntegrator(x)           // in the section
    setpointer ef.ex, e_extracellular(x)
    ef.setTerms(vec)                       // 7 numbers per term, see below

Each term k holds (phi, freq, phase, delay, ramp_up, duration, ramp_down):
phi is the potential of the segment in that field (mV), freq in Hz, phase in rad,
times in ms.  Before every time step (and at INITIAL):

    ex = sum_k r_k(t) * phi_k * cos(2 pi freq_k (t - delay_k) / 1000 + phase_k)

for delay_k < t < delay_k + ramp_up_k + duration_k + ramp_down_k (0 outside),
where r_k rises linearly from 0 to 1 during the ramp-up, is 1 during the
duration and falls linearly to 0 during the ramp-down.  The terms are summed in
the order given (compatibility contract section 4.6).

NEURON only: CoreNEURON has no `extracellular` mechanism.  The terms live in a
malloc'ed block [n, 7n values] behind BBCOREPOINTER `ptr` (serialised by
bbcore_write/read so that the library also builds with -coreneuron).
ENDCOMMENT

NEURON {
    THREADSAFE
    POINT_PROCESS EFieldIntegrator
    POINTER ex
    RANGE nterms
    BBCOREPOINTER ptr
}

UNITS {
    (mV) = (millivolt)
}

ASSIGNED {
    ex (mV)
    nterms
    ptr
}

VERBATIM
#include <cmath>
#include <cstdlib>

#define EFIELD_NPAR 7

/* sum of all terms at time tt; 0 when there is no block */
static double efield_value_(const void* blk, double tt) {
    const double* b_ = (const double*) blk;
    if (!b_) {
        return 0.0;
    }
    int n_ = (int) b_[0];
    double sum_ = 0.0;
    for (int k_ = 0; k_ < n_; ++k_) {
        const double* p_ = b_ + 1 + EFIELD_NPAR * k_;
        double phi_ = p_[0], freq_ = p_[1], phase_ = p_[2], delay_ = p_[3];
        double up_ = p_[4], dur_ = p_[5], down_ = p_[6];
        double end_ = delay_ + up_ + dur_ + down_;
        if (tt > delay_ && tt < end_) {
            double r_ = 1.0;
            if (tt < delay_ + up_) {
                r_ = (tt - delay_) / up_;
            } else if (tt > delay_ + up_ + dur_) {
                r_ = (end_ - tt) / down_;
            }
            sum_ += r_ * phi_ * cos(2 * M_PI * freq_ * (tt - delay_) / 1000 + phase_);
        }
    }
    return sum_;
}

static void bbcore_write(double* xarray, int* iarray, int* xoffset, int* ioffset, _threadargsproto_) {
    const double* b_ = (const double*) _p_ptr;
    int n_ = b_ ? (int) b_[0] : 0;
    if (iarray) {
        iarray[*ioffset] = n_;
    }
    if (xarray) {
        for (int i_ = 0; i_ < EFIELD_NPAR * n_; ++i_) {
            xarray[*xoffset + i_] = b_[1 + i_];
        }
    }
    *ioffset += 1;
    *xoffset += EFIELD_NPAR * n_;
}

static void bbcore_read(double* xarray, int* iarray, int* xoffset, int* ioffset, _threadargsproto_) {
    int n_ = iarray[*ioffset];
    double* b_ = (double*) malloc(sizeof(double) * (1 + EFIELD_NPAR * n_));
    b_[0] = (double) n_;
    for (int i_ = 0; i_ < EFIELD_NPAR * n_; ++i_) {
        b_[1 + i_] = xarray[*xoffset + i_];
    }
    _p_ptr = (void*) b_;
    *ioffset += 1;
    *xoffset += EFIELD_NPAR * n_;
}
ENDVERBATIM

INITIAL {
    update()
}

BEFORE BREAKPOINT {
    update()
}

PROCEDURE update() {
    ex = value_at(t)
}

: potential this instance would write at time tt (for checks)
FUNCTION value_at(tt (ms)) (mV) {
VERBATIM
    _lvalue_at = efield_value_(_p_ptr, _ltt);
ENDVERBATIM
}

: replace all terms by the hoc Vector argument (7 values per term)
PROCEDURE setTerms() {
VERBATIM
#ifndef CORENEURON_BUILD
    {
        IvocVect* vec_ = vector_arg(1);
        int len_ = vector_capacity(vec_);
        const double* src_ = vector_vec(vec_);
        int n_ = len_ / EFIELD_NPAR;
        double* b_ = (double*) malloc(sizeof(double) * (1 + EFIELD_NPAR * n_));
        b_[0] = (double) n_;
        for (int i_ = 0; i_ < EFIELD_NPAR * n_; ++i_) {
            b_[1 + i_] = src_[i_];
        }
        void* old_ = _p_ptr;
        _p_ptr = (void*) b_;
        if (old_) {
            free(old_);
        }
        nterms = n_;
    }
#endif
ENDVERBATIM
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
