package kpi

// EvaporationCoefficient is the usual k of the evaporation formula, per °C, at 20 °C air. It
// varies with air temperature (DOMAIN.md: verify), so callers pass k explicitly.
const EvaporationCoefficient = 0.0014

// Evaporation is a cooling tower's evaporation loss E = k · Δt · Q: k per °C (about
// EvaporationCoefficient), Δt the range (hot minus cold water) in °C and Q the circulating flow.
// E is in the unit of Q (m³/h in, m³/h out).
func Evaporation(k, deltaT, qCirc float64) float64 { return k * deltaT * qCirc }

// Cycles is the cycles of concentration N = C_circ / C_makeup, from the concentration of a
// conservative ion (or conductivity) in circulating and make-up water.
func Cycles(cCirc, cMakeup float64) (float64, bool) { return ratio(cCirc, cMakeup) }

// Blowdown is the blowdown plus drift loss E / (N − 1); undefined unless N > 1.
func Blowdown(e, n float64) (float64, bool) { return ratio(e, n-1) }

// Makeup is the make-up flow M = E · N / (N − 1) (evaporation plus blowdown and drift);
// undefined unless N > 1.
func Makeup(e, n float64) (float64, bool) { return ratio(e*n, n-1) }
