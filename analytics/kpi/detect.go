package kpi

import (
	"errors"
	"fmt"
	"math"
)

// ErrParameter is wrapped by the constructors' errors for parameters a detector cannot use.
var ErrParameter = errors.New("invalid detector parameter")

// CUSUM is the one-sided upper cumulative sum for a rise in a series such as a balance
// residual: S⁺ₜ = max(0, S⁺ₜ₋₁ + xₜ − μ₀ − k), alarm while S⁺ > h. Usual choices are k = 0.5σ
// and h = 4σ to 5σ. Its fields are its whole state, so it can be stored and restored as is.
type CUSUM struct {
	Mu0 float64 // in-control mean
	K   float64 // allowance (slack) per step
	H   float64 // decision interval
	S   float64 // current S⁺
}

// NewCUSUM returns a CUSUM detector; k must not be negative and h must be positive.
func NewCUSUM(mu0, k, h float64) (*CUSUM, error) {
	if !(k >= 0) || !(h > 0) || math.IsNaN(mu0) {
		return nil, fmt.Errorf("%w: cusum needs k >= 0 and h > 0 (mu0 = %g, k = %g, h = %g)", ErrParameter, mu0, k, h)
	}
	return &CUSUM{Mu0: mu0, K: k, H: h}, nil
}

// Update adds one observation and returns S⁺ and whether it is above h. A non-finite x is
// skipped, so one bad value cannot poison the sum.
func (c *CUSUM) Update(x float64) (s float64, alarm bool) {
	if !math.IsNaN(x) && !math.IsInf(x, 0) {
		c.S = max(0, c.S+x-c.Mu0-c.K)
	}
	return c.S, c.S > c.H
}

// Reset restarts the sum, for example once an alarm was handled.
func (c *CUSUM) Reset() { c.S = 0 }

// EWMA is the exponentially weighted moving average chart: zₜ = λxₜ + (1 − λ)zₜ₋₁ with z₀ = μ₀,
// alarm while |zₜ − μ₀| exceeds Lσ√(λ/(2 − λ)·(1 − (1 − λ)^{2t})). Usual choices are
// λ = 0.05 to 0.3 and L ≈ 3. Its fields are its whole state.
type EWMA struct {
	Mu0    float64 // in-control mean
	Sigma  float64 // in-control standard deviation of one observation
	Lambda float64 // weight of the newest observation, 0 < λ <= 1
	L      float64 // width of the limits in standard deviations of z
	Z      float64 // current zₜ (meaningless while N is 0)
	N      int     // observations so far
}

// NewEWMA returns an EWMA detector.
func NewEWMA(mu0, sigma, lambda, l float64) (*EWMA, error) {
	if !(sigma > 0) || !(lambda > 0 && lambda <= 1) || !(l > 0) || math.IsNaN(mu0) {
		return nil, fmt.Errorf("%w: ewma needs sigma > 0, 0 < lambda <= 1 and L > 0 (mu0 = %g, sigma = %g, lambda = %g, L = %g)",
			ErrParameter, mu0, sigma, lambda, l)
	}
	return &EWMA{Mu0: mu0, Sigma: sigma, Lambda: lambda, L: l}, nil
}

// Update adds one observation and returns zₜ and whether it is outside the limits. A
// non-finite x is skipped.
func (e *EWMA) Update(x float64) (z float64, alarm bool) {
	if !math.IsNaN(x) && !math.IsInf(x, 0) {
		prev := e.Mu0
		if e.N > 0 {
			prev = e.Z
		}
		e.N++
		e.Z = e.Lambda*x + (1-e.Lambda)*prev
	}
	if e.N == 0 {
		return e.Mu0, false
	}
	return e.Z, math.Abs(e.Z-e.Mu0) > e.halfWidth()
}

// Limits returns the control limits for the current number of observations (for the first
// one before any).
func (e *EWMA) Limits() (lo, hi float64) {
	w := e.halfWidth()
	return e.Mu0 - w, e.Mu0 + w
}

func (e *EWMA) halfWidth() float64 {
	t := float64(max(e.N, 1))
	return e.L * e.Sigma * math.Sqrt(e.Lambda/(2-e.Lambda)*(1-math.Pow(1-e.Lambda, 2*t)))
}
