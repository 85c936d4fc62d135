// Package kpi holds the water indicators of GB/T 7119 (reuse rate, cooling-water circulation,
// condensate reuse, leakage, discharge, metering...), the change detectors used on balance
// residuals (CUSUM, EWMA) and the cooling-tower formulas, as pure functions of volumes. The
// live view and the evidence reports both call them, so they cannot disagree.
//
// Rates are fractions (0.9 is 90 %). Every indicator also says whether it is defined: a zero or
// negative denominator, or a non-finite input, gives ok = false and never NaN or ±Inf, so an
// empty period shows "no value" rather than 0 % or 100 %.
package kpi

import (
	"fmt"
	"math"
)

// ratio is num/den when den > 0 and both are finite.
func ratio(num, den float64) (float64, bool) {
	if !(den > 0) || math.IsInf(den, 0) || math.IsNaN(num) || math.IsInf(num, 0) {
		return 0, false
	}
	return num / den, true
}

// ReuseRate is the 重复利用率 R = Vr / (Vr + Vi): reused water over reused plus intake.
func ReuseRate(vr, vi float64) (float64, bool) { return ratio(vr, vr+vi) }

// ReuseRateWithVu is the variant R = Vr / (Vr + Vi + Vu) that also counts non-conventional
// water in the denominator. Reports show both and mark which one is declared.
func ReuseRateWithVu(vr, vi, vu float64) (float64, bool) { return ratio(vr, vr+vi+vu) }

// IndirectCoolingRate is the 间接冷却水循环率 Rc = Vcr / (Vcr + Vcf): circulating flow over
// circulating flow plus make-up of the indirect cooling loops.
func IndirectCoolingRate(vcr, vcf float64) (float64, bool) { return ratio(vcr, vcr+vcf) }

// DirectCoolingRate is the 直接冷却水循环率 Rd = Vdr / (Vdr + Vdf).
func DirectCoolingRate(vdr, vdf float64) (float64, bool) { return ratio(vdr, vdr+vdf) }

// CondensateRate is the 蒸汽冷凝水回用率 Rb = Vb · ρ / D: condensate reused (m³) times its
// density (t/m³) over steam produced (t). A density that is not positive is undefined.
func CondensateRate(vb, rho, d float64) (float64, bool) {
	if !(rho > 0) {
		return 0, false
	}
	return ratio(vb*rho, d)
}

// WastewaterReuseRate is the 废水回用率 Kw = Vw / (Vw + Vd).
func WastewaterReuseRate(vw, vd float64) (float64, bool) { return ratio(vw, vw+vd) }

// LeakageRate is the 用水综合漏失率 Kl = Vl / Vi. A negative residual Vl gives a negative rate:
// the meters disagree by more than the leak.
func LeakageRate(vl, vi float64) (float64, bool) { return ratio(vl, vi) }

// DischargeRate is the 排水率 Kd = Vd / Vi.
func DischargeRate(vd, vi float64) (float64, bool) { return ratio(vd, vi) }

// ConsumptionRate is the 耗水率 Vco / Vi.
func ConsumptionRate(vco, vi float64) (float64, bool) { return ratio(vco, vi) }

// NonConventionalBase is the denominator of the non-conventional water substitution rate, which
// differs between regions (DOMAIN.md: verify, keep configurable).
type NonConventionalBase string

const (
	// IntakeAndNonConventional divides by Vi + Vu (the default).
	IntakeAndNonConventional NonConventionalBase = "intake_and_non_conventional"
	// IntakeOnly divides by Vi.
	IntakeOnly NonConventionalBase = "intake"
)

// Valid reports whether b is a known base; the empty base is the default.
func (b NonConventionalBase) Valid() error {
	switch b {
	case "", IntakeAndNonConventional, IntakeOnly:
		return nil
	}
	return fmt.Errorf("non-conventional base %q is not one of %s, %s", string(b), IntakeAndNonConventional, IntakeOnly)
}

// NonConventionalRate is the 非常规水资源替代率 Ru = Vu / (Vi + Vu), or Vu / Vi with IntakeOnly.
// An unknown base is undefined.
func NonConventionalRate(vu, vi float64, base NonConventionalBase) (float64, bool) {
	switch base {
	case "", IntakeAndNonConventional:
		return ratio(vu, vi+vu)
	case IntakeOnly:
		return ratio(vu, vi)
	}
	return 0, false
}

// IntakePerProduct is the 单位产品取水量 Vi / Q, in m³ per unit of product.
func IntakePerProduct(vi, q float64) (float64, bool) { return ratio(vi, q) }

// IntakePer10kCNY is the 万元产值取水量 Vi / Z, in m³ per 10⁴ CNY of output value.
func IntakePer10kCNY(vi, z float64) (float64, bool) { return ratio(vi, z) }

// MeteringRate is the 水计量率: metered volume over total volume at one metering level.
func MeteringRate(metered, total float64) (float64, bool) { return ratio(metered, total) }

// EquippingRate is the 水计量器具配备率: meters installed over meters required at one level.
func EquippingRate(installed, required int) (float64, bool) {
	return ratio(float64(installed), float64(required))
}

// Leakage is the residual Vl = Vi − Vco − Vd of the enterprise balance (漏失水量, also called
// unaccounted water).
func Leakage(vi, vco, vd float64) float64 { return vi - vco - vd }

// LeakageBalance is the residual of the full enterprise balance
// Vi + Vu = Vco + Vd + Vl + V外供: Vl = Vi + Vu − Vco − Vd − Vsupplied.
func LeakageBalance(vi, vu, vco, vd, vsupplied float64) float64 {
	return vi + vu - vco - vd - vsupplied
}
