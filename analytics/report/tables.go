package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aqualoop/aqualoop/analytics/engine"
)

// Languages of a pack.
const (
	LangZH = "zh"
	LangEN = "en"
)

// DefaultLang is Chinese for a site in China (a time zone in Asia/), English elsewhere.
func DefaultLang(timezone string) string {
	if strings.HasPrefix(timezone, "Asia/") {
		return LangZH
	}
	return LangEN
}

// catalogue holds every string a pack prints, Chinese and English, by key.
var catalogue = map[string][2]string{
	"title":           {"水平衡测试与再生水利用证据报告", "Water balance test and reuse evidence report"},
	"summary":         {"试点条件核查摘要", "Summary against the pilot conditions"},
	"enterprise":      {"企业与报告期", "Enterprise and period"},
	"sources":         {"水源情况", "Sources of water"},
	"register":        {"水计量器具一览表", "Meter register"},
	"metering":        {"水计量器具配备率与水计量率（GB/T 24789）", "Equipping and metering rates (GB/T 24789)"},
	"diagram":         {"水平衡图", "Water balance diagram"},
	"balance_units":   {"用水单元水平衡表", "Balance per unit"},
	"balance_site":    {"全厂水平衡表", "Site balance"},
	"indicators":      {"用水指标（GB/T 7119）", "Indicators (GB/T 7119)"},
	"monthly":         {"逐月重复利用率与行业基准", "Monthly reuse rate and sector benchmark"},
	"plans":           {"近三年取水计划执行情况", "Withdrawal against plan, last three years"},
	"quality":         {"数据质量", "Data quality"},
	"replacements":    {"水表更换记录", "Meter replacement records"},
	"hourly":          {"逐时分表水量", "Hourly volume per meter"},
	"monthly_meters":  {"逐月分表水量", "Monthly volume per meter"},
	"reuse_rate":      {"重复利用率高于行业平均水平", "Reuse rate above the sector average"},
	"check_metering":  {"计量器具配备与计量率符合 GB/T 24789", "Metering per GB/T 24789"},
	"verification":    {"计量器具在报告期内每日均在检定有效期内", "Meters verified on every day of the period"},
	"check_plans":     {"近三年取水无超计划", "No withdrawal over plan in the last three years"},
	"pass":            {"符合", "pass"},
	"fail":            {"不符合", "fail"},
	"condition":       {"条件", "Condition"},
	"value":           {"实际值", "Value"},
	"target":          {"要求", "Required"},
	"result":          {"结论", "Result"},
	"detail":          {"依据/说明", "Basis / detail"},
	"gaps":            {"注意：报告期内数据不完整（存在缺测、估算或推算水量），详见“数据质量”。", "Note: the period's data is incomplete (gaps, estimated or derived volumes); see Data quality."},
	"complete":        {"报告期内各计量器具数据完整。", "Every meter's data is complete over the period."},
	"partial":         {"报告期尚未结束，数据截至", "The period has not ended; data up to"},
	"field":           {"项目", "Field"},
	"site_id":         {"站点编号", "Site id"},
	"site_name":       {"企业名称", "Enterprise"},
	"park":            {"所属园区", "Park"},
	"period":          {"报告期", "Period"},
	"from":            {"起", "From"},
	"to":              {"止", "To"},
	"generated":       {"生成时间", "Generated"},
	"version":         {"软件版本", "aqualoop version"},
	"declared":        {"申报的重复利用率口径", "Declared reuse rate"},
	"use_definition":  {"用水量口径", "Water use definition"},
	"use_def_text":    {"Vt = Vi + Vr（GB/T 7119）", "Vt = Vi + Vr (GB/T 7119)"},
	"benchmark":       {"行业基准", "Sector benchmark"},
	"node":            {"节点", "Node"},
	"name":            {"名称", "Name"},
	"kind":            {"类型", "Kind"},
	"conventional":    {"常规水源", "Conventional"},
	"flows":           {"水流", "Flows"},
	"meters":          {"计量器具", "Meters"},
	"volume":          {"水量 m³", "Volume m³"},
	"coverage":        {"数据覆盖率", "Coverage"},
	"meter":           {"表号", "Meter"},
	"level":           {"级别", "Level"},
	"dn":              {"口径 DN", "DN"},
	"class":           {"准确度等级", "Class"},
	"mtype":           {"原理", "Type"},
	"location":        {"安装位置", "Location"},
	"flow":            {"计量水流", "Flow"},
	"verified_on":     {"检定日期", "Verified on"},
	"certificate":     {"证书编号", "Certificate"},
	"next_due":        {"下次检定（JJG 162）", "Next due (JJG 162)"},
	"status":          {"状态", "Status"},
	"unverified_days": {"未在有效期天数", "Days unverified"},
	"unverified":      {"未在有效期日期", "Unverified days"},
	"metered_volume":  {"计量水量 m³", "Metered m³"},
	"total_volume":    {"总水量 m³", "Total m³"},
	"metering_rate":   {"水计量率", "Metering rate"},
	"rate_target":     {"要求", "Required"},
	"installed":       {"已配备", "Installed"},
	"required":        {"应配备", "Required"},
	"equipping_rate":  {"配备率", "Equipping rate"},
	"equip_target":    {"要求", "Required"},
	"in":              {"进水 m³", "In m³"},
	"out":             {"出水 m³", "Out m³"},
	"consumption":     {"耗水 m³", "Consumed m³"},
	"residual":        {"差值（漏失）m³", "Residual m³"},
	"closure":         {"相对差", "Residual / in"},
	"unit_intakes":    {"各单元取水之和 m³", "Unit intakes m³"},
	"total_intake":    {"总取水 m³", "Total intake m³"},
	"closure_error":   {"闭合误差", "Closure error"},
	"closure_limit":   {"允许值", "Threshold"},
	"closure_ok":      {"闭合", "Closes"},
	"indicator":       {"指标", "Indicator"},
	"formula":         {"公式", "Formula"},
	"term":            {"变量", "Term"},
	"month":           {"月份", "Month"},
	"plan":            {"计划", "Plan"},
	"year":            {"年", "Year"},
	"source":          {"水源", "Source"},
	"approval":        {"批复文号", "Approval"},
	"planned":         {"计划量 m³", "Planned m³"},
	"used":            {"实际取水 m³", "Used m³"},
	"used_fraction":   {"完成率", "Used / planned"},
	"over":            {"超计划", "Over plan"},
	"missing_minutes": {"缺失分钟", "Missing minutes"},
	"gap":             {"缺测", "Gap"},
	"estimated":       {"估算", "Estimated"},
	"derived":         {"推算", "Derived"},
	"reset":           {"复位/换表", "Reset"},
	"replaced":        {"有换表记录", "Replaced"},
	"clamped":         {"反向钳零", "Clamped"},
	"spike":           {"尖峰", "Spike"},
	"fault":           {"故障", "Fault"},
	"rollover":        {"翻转", "Rollover"},
	"estimated_vol":   {"估算/推算水量 m³", "Estimated/derived m³"},
	"time":            {"时间", "Time"},
	"old_final":       {"旧表末读数", "Old final"},
	"new_initial":     {"新表初读数", "New initial"},
	"recorded_by":     {"录入人", "Entered by"},
	"recorded_at":     {"录入时间", "Entered at"},
	"hour":            {"时段", "Hour"},
	"site":            {"全厂", "site"},
	"none":            {"无", "none"},
	"yes":             {"是", "yes"},
	"no":              {"否", "no"},
	"diagram_note":    {"箭头上为报告期水量（m³），方框内为节点差值（进 − 出 − 耗，m³）。", "Arrows carry the period's volumes (m³); boxes show each node's residual (in − out − consumed, m³)."},
	"R":               {"重复利用率 R", "Reuse rate R"},
	"R_vu":            {"重复利用率（含非常规水）", "Reuse rate with Vu"},
	"Rc":              {"间接冷却水循环率 Rc", "Indirect cooling recirculation Rc"},
	"Rd":              {"直接冷却水循环率 Rd", "Direct cooling recirculation Rd"},
	"Rb":              {"蒸汽冷凝水回用率 Rb", "Condensate reuse rate Rb"},
	"Kw":              {"废水回用率 Kw", "Wastewater reuse rate Kw"},
	"Kl":              {"用水综合漏失率 Kl", "Leakage rate Kl"},
	"Kd":              {"排水率 Kd", "Discharge rate Kd"},
	"Kco":             {"耗水率", "Consumption rate"},
	"Ru":              {"非常规水资源替代率 Ru", "Non-conventional substitution Ru"},
	"ViQ":             {"单位产品取水量 Vi/Q", "Intake per product Vi/Q"},
	"ViZ":             {"万元产值取水量 Vi/Z", "Intake per 10⁴ CNY Vi/Z"},
	"page":            {"第 %d 页", "page %d"},
}

// T returns the text of key in lang.
func T(lang, key string) string {
	e, ok := catalogue[key]
	if !ok {
		return key
	}
	if lang == LangEN {
		return e[1]
	}
	return e[0]
}

// Cell is one cell of a table: the text shown, the number behind it (CSV writes it at full
// precision, XLSX as a number) and, for a computed figure, an Excel formula over cells of the
// same row, written with the column letter in braces: "{E}/({E}+{G})".
type Cell struct {
	Text    string
	Num     *float64
	Formula string
}

func txt(s string) Cell { return Cell{Text: s} }

func num(v float64, text string) Cell { return Cell{Text: text, Num: &v} }

func vol(v float64) Cell { return num(v, Vol(v)) }

func pct(v *float64) Cell {
	if v == nil {
		return Cell{Text: "—"}
	}
	return num(*v, Pct(*v))
}

func count(n int) Cell { return num(float64(n), strconv.Itoa(n)) }

// Table is one section's table.
type Table struct {
	ID    string
	Title string
	Head  []string
	Rows  [][]Cell
	// Widths are relative column widths for the PDF.
	Widths []float64
}

// indicatorDef ties an indicator of the engine to its row: terms in formula order and the
// Excel template over the term value columns E, G and I.
type indicatorDef struct {
	key   string
	ind   func(r *engine.Rates) engine.Indicator
	terms []string
	excel string
}

func ratioOfSum(a, b string) string {
	return fmt.Sprintf(`IF((%s+%s)>0,%s/(%s+%s),"")`, a, b, a, a, b)
}

func ratio(a, b string) string { return fmt.Sprintf(`IF(%s>0,%s/%s,"")`, b, a, b) }

func (p *Pack) indicatorDefs() []indicatorDef {
	ru := []string{"vu", "vi"}
	ruX := `IF(({G}+{E})>0,{E}/({G}+{E}),"")`
	if strings.HasPrefix(p.Indicators.Rates.NonConventionalRate.Formula, "Vu / Vi") {
		ruX = ratio("{E}", "{G}")
	}
	return []indicatorDef{
		{"R", func(r *engine.Rates) engine.Indicator { return r.ReuseRate }, []string{"vr", "vi"}, ratioOfSum("{E}", "{G}")},
		{"R_vu", func(r *engine.Rates) engine.Indicator { return r.ReuseRateWithVu }, []string{"vr", "vi", "vu"}, `IF(({E}+{G}+{I})>0,{E}/({E}+{G}+{I}),"")`},
		{"Rc", func(r *engine.Rates) engine.Indicator { return r.IndirectCoolingRate }, []string{"vcr", "vcf"}, ratioOfSum("{E}", "{G}")},
		{"Rd", func(r *engine.Rates) engine.Indicator { return r.DirectCoolingRate }, []string{"vdr", "vdf"}, ratioOfSum("{E}", "{G}")},
		{"Rb", func(r *engine.Rates) engine.Indicator { return r.CondensateRate }, []string{"vb", "rho", "d"}, `IF(N({I})>0,{E}*{G}/{I},"")`},
		{"Kw", func(r *engine.Rates) engine.Indicator { return r.WastewaterReuseRate }, []string{"vw", "vd"}, ratioOfSum("{E}", "{G}")},
		{"Kl", func(r *engine.Rates) engine.Indicator { return r.LeakageRate }, []string{"vl", "vi"}, ratio("{E}", "{G}")},
		{"Kd", func(r *engine.Rates) engine.Indicator { return r.DischargeRate }, []string{"vd", "vi"}, ratio("{E}", "{G}")},
		{"Kco", func(r *engine.Rates) engine.Indicator { return r.ConsumptionRate }, []string{"vco", "vi"}, ratio("{E}", "{G}")},
		{"Ru", func(r *engine.Rates) engine.Indicator { return r.NonConventionalRate }, ru, ruX},
		{"ViQ", func(r *engine.Rates) engine.Indicator { return r.IntakePerProduct }, []string{"vi", "q"}, `IF(N({G})>0,{E}/{G},"")`},
		{"ViZ", func(r *engine.Rates) engine.Indicator { return r.IntakePer10kCNY }, []string{"vi", "z"}, `IF(N({G})>0,{E}/{G},"")`},
	}
}

// IndicatorKeys are the row keys of the indicator table, in order (column A of the sheet).
func (p *Pack) IndicatorKeys() []string {
	var out []string
	for _, d := range p.indicatorDefs() {
		out = append(out, d.key)
	}
	return out
}

func (p *Pack) day(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(p.site.Location()).Format(time.DateOnly)
}

// Tables returns every section as a table, in the order of the report, in lang.
func (p *Pack) Tables(lang string) []Table {
	L := func(k string) string { return T(lang, k) }
	yn := func(b bool) string {
		if b {
			return L("yes")
		}
		return L("no")
	}
	pf := func(b bool) string {
		if b {
			return L("pass")
		}
		return L("fail")
	}
	var out []Table

	sum := Table{ID: "summary", Title: L("summary"), Head: []string{L("condition"), L("value"), L("target"), L("result"), L("detail")}, Widths: []float64{3, 2.4, 2.4, 1, 3.2}}
	names := map[string]string{CheckReuseRate: "reuse_rate", CheckMetering: "check_metering", CheckVerification: "verification", CheckPlans: "check_plans"}
	for _, c := range p.Checks {
		sum.Rows = append(sum.Rows, []Cell{txt(L(names[c.Key])), txt(c.Value), txt(c.Target), txt(pf(c.Pass)), txt(c.Detail)})
	}
	out = append(out, sum)

	ent := Table{ID: "enterprise", Title: L("enterprise"), Head: []string{L("field"), L("value")}, Widths: []float64{1, 2}}
	bench := "—"
	if b := p.Benchmark; b != nil {
		bench = fmt.Sprintf("%s %d: %s (%s)", b.Sector, b.Year, Pct(b.ReuseRate), b.Source)
	}
	declared := "R = Vr / (Vr + Vi)"
	if p.Declared == "reuse_rate_with_vu" {
		declared = "R = Vr / (Vr + Vi + Vu)"
	}
	to := p.Period.To.Format(time.DateTime)
	if p.Period.Partial {
		to += " (" + L("partial") + ")"
	}
	for _, kv := range [][2]string{
		{L("site_name"), p.Site.Name}, {L("site_id"), p.Site.ID}, {L("park"), p.Site.Park}, {L("period"), p.Period.Label},
		{L("from"), p.Period.From.Format(time.DateTime) + " " + p.Site.Timezone}, {L("to"), to},
		{L("generated"), p.Generated.Format(time.DateTime)}, {L("version"), p.Version}, {L("declared"), declared},
		{L("use_definition"), L("use_def_text")}, {L("benchmark"), bench},
	} {
		ent.Rows = append(ent.Rows, []Cell{txt(kv[0]), txt(kv[1])})
	}
	out = append(out, ent)

	src := Table{ID: "sources", Title: L("sources"), Head: []string{L("node"), L("name"), L("kind"), L("conventional"), L("flows"), L("meters"), L("volume"), L("coverage")},
		Widths: []float64{1.2, 1.5, 1.2, 0.9, 1.5, 1.2, 1.3, 1}}
	for _, s := range p.Sources {
		src.Rows = append(src.Rows, []Cell{txt(s.Node), txt(s.Name), txt(s.Kind), txt(yn(s.Conventional)), txt(s.Flows), txt(s.Meters), vol(s.Volume), pct(&s.Coverage)})
	}
	out = append(out, src)

	reg := Table{ID: "register", Title: L("register"), Head: []string{L("meter"), L("name"), L("level"), L("dn"), L("class"), L("mtype"), L("location"), L("flow"),
		L("verified_on"), L("certificate"), L("next_due"), L("status"), L("unverified_days"), L("unverified")},
		Widths: []float64{0.8, 1.3, 0.5, 0.6, 0.7, 1.3, 1.1, 1.1, 1.3, 1.3, 1.3, 1.1, 0.8, 1.8}}
	for _, m := range p.Meters {
		reg.Rows = append(reg.Rows, []Cell{txt(m.ID), txt(m.Name), count(m.Level), count(m.DN), count(m.Class), txt(m.Type), txt(m.Location), txt(m.Flow),
			txt(m.VerifiedOn), txt(m.Certificate), txt(p.day(m.NextDue)), txt(m.Status), count(m.UnverifiedDays), txt(strings.Join(m.Unverified, ", "))})
	}
	out = append(out, reg)

	met := Table{ID: "metering", Title: L("metering"), Head: []string{L("level"), L("metered_volume"), L("total_volume"), L("metering_rate"), L("rate_target"),
		L("installed"), L("required"), L("equipping_rate"), L("equip_target")}, Widths: []float64{0.6, 1.3, 1.3, 1, 0.9, 0.8, 0.8, 1, 0.9}}
	for _, lm := range p.Indicators.Metering {
		r := pct(lm.Rate)
		r.Formula = ratio("{B}", "{C}")
		e := pct(lm.EquippingRate)
		e.Formula = ratio("{F}", "{G}")
		met.Rows = append(met.Rows, []Cell{count(lm.Level), vol(lm.MeteredVolume), vol(lm.TotalVolume), r, pct(lm.RateTarget), count(lm.Installed), count(lm.Required), e, pct(lm.EquippingTarget)})
	}
	out = append(out, met)

	bu := Table{ID: "balance_units", Title: L("balance_units"), Head: []string{L("node"), L("name"), L("kind"), L("in"), L("out"), L("consumption"), L("residual"), L("closure")},
		Widths: []float64{1.2, 1.5, 1.2, 1.2, 1.2, 1.2, 1.2, 1}}
	for _, n := range p.Balance.Nodes {
		if n.Type != "unit" {
			continue
		}
		r := vol(n.Residual)
		r.Formula = "{D}-{E}-{F}"
		c := pct(n.Closure)
		c.Formula = `IF({D}<>0,{G}/{D},"")`
		bu.Rows = append(bu.Rows, []Cell{txt(n.ID), txt(n.Name), txt(n.Kind), vol(n.In), vol(n.Out), vol(n.Consumption), r, c})
	}
	out = append(out, bu)

	w := p.Balance.Whole
	bs := Table{ID: "balance_site", Title: L("balance_site"), Head: []string{"Vi", "Vu", "Vco", "Vd", "V外供", "Vl = Vi + Vu − Vco − Vd − V外供", "Kl = Vl / Vi",
		L("unit_intakes"), L("total_intake"), L("closure_error"), L("closure_limit"), L("closure_ok")}, Widths: []float64{1, 0.8, 1, 1, 0.8, 1.4, 0.9, 1.1, 1.1, 0.9, 0.8, 0.6}}
	vl := vol(w.Vl)
	vl.Formula = "{A}+{B}-{C}-{D}-{E}"
	kl := pct(w.LeakageRate)
	kl.Formula = ratio("{F}", "{A}")
	bs.Rows = [][]Cell{{vol(w.Vi), vol(w.Vu), vol(w.Vco), vol(w.Vd), vol(w.VSupplied), vl, kl, vol(w.UnitIntakes), vol(w.TotalIntake), pct(&w.ClosureError),
		pct(&w.ClosureThreshold), txt(yn(w.ClosureOK))}}
	out = append(out, bs)

	it := Table{ID: "indicators", Title: L("indicators"), Head: []string{"key", L("indicator"), L("formula"), L("term"), "", L("term"), "", L("term"), "", L("value"), L("coverage"), L("declared")},
		Widths: []float64{0.5, 2.2, 1.8, 0.5, 1.1, 0.5, 1.1, 0.5, 1.1, 1, 0.8, 0.6}}
	for _, d := range p.indicatorDefs() {
		ind := d.ind(&p.Indicators.Rates)
		row := []Cell{txt(d.key), txt(L(d.key)), txt(ind.Formula)}
		for i := range 3 {
			if i >= len(d.terms) {
				row = append(row, txt(""), txt(""))
				continue
			}
			name := d.terms[i]
			if v, ok := ind.Terms[name]; ok {
				row = append(row, txt(name), num(v, strconv.FormatFloat(v, 'f', 2, 64)))
			} else {
				row = append(row, txt(name), txt("—"))
			}
		}
		var v Cell
		if ind.Unit == "ratio" {
			v = pct(ind.Value)
		} else if ind.Value != nil {
			v = num(*ind.Value, fmt.Sprintf("%.4f %s", *ind.Value, ind.Unit))
		} else {
			v = txt("—")
		}
		v.Formula = d.excel
		row = append(row, v, pct(&ind.Coverage), txt(yn(ind.Declared)))
		it.Rows = append(it.Rows, row)
	}
	out = append(out, it)

	mo := Table{ID: "monthly", Title: L("monthly"), Head: []string{L("month"), "Vi", "Vu", "Vr", "R", "R (Vu)", L("benchmark"), L("coverage")},
		Widths: []float64{1, 1.3, 1, 1.5, 1, 1, 1, 1}}
	for _, m := range p.Months {
		r := pct(m.R)
		r.Formula = ratioOfSum("{D}", "{B}")
		rv := pct(m.RWithVu)
		rv.Formula = `IF(({D}+{B}+{C})>0,{D}/({D}+{B}+{C}),"")`
		var b Cell
		if p.Benchmark != nil {
			b = pct(&p.Benchmark.ReuseRate)
		} else {
			b = txt("—")
		}
		mo.Rows = append(mo.Rows, []Cell{txt(m.Label), vol(m.Vi), vol(m.Vu), vol(m.Vr), r, rv, b, pct(&m.Coverage)})
	}
	out = append(out, mo)

	pl := Table{ID: "plans", Title: L("plans"), Head: []string{L("plan"), L("period"), L("year"), L("month"), L("source"), L("approval"), L("planned"), L("used"), L("used_fraction"), L("over"), L("coverage")},
		Widths: []float64{1.5, 0.7, 0.6, 0.6, 0.8, 1.1, 1.1, 1.1, 0.9, 0.7, 0.8}}
	for _, r := range p.Plans {
		planned, frac, over := txt("—"), txt("—"), txt("—")
		if r.Planned != nil {
			planned = vol(*r.Planned)
			f := 0.0
			if *r.Planned > 0 {
				f = r.Used / *r.Planned
			}
			frac = num(f, Pct(f))
			over = txt(yn(r.Over))
		}
		frac.Formula = `IF(N({G})>0,{H}/{G},"")`
		src := r.Source
		if src == "" {
			src = L("site")
		}
		pl.Rows = append(pl.Rows, []Cell{txt(r.Plan), txt(r.Period), count(r.Year), count(r.Month), txt(src), txt(r.Approval), planned, vol(r.Used), frac, over, pct(&r.Coverage)})
	}
	out = append(out, pl)

	q := Table{ID: "quality", Title: L("quality"), Head: []string{L("meter"), L("coverage"), L("volume"), L("missing_minutes"), L("gap"), L("estimated"), L("derived"), L("reset"),
		L("replaced"), L("clamped"), L("spike"), L("fault"), L("rollover"), L("estimated_vol")}, Widths: []float64{1, 0.9, 1.2, 0.9, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 1}}
	for _, m := range p.Quality {
		q.Rows = append(q.Rows, []Cell{txt(m.Meter), pct(&m.Coverage), vol(m.Volume), count(m.MissingMinutes), count(m.Gap), count(m.Estimated), count(m.Derived), count(m.Reset),
			count(m.Replaced), count(m.Clamped), count(m.Spike), count(m.Fault), count(m.Rollover), vol(m.EstimatedVolume)})
	}
	out = append(out, q)

	rp := Table{ID: "replacements", Title: L("replacements"), Head: []string{L("meter"), L("time"), L("old_final"), L("new_initial"), L("recorded_by"), L("recorded_at")},
		Widths: []float64{1, 1.6, 1, 1, 1, 1.6}}
	for _, x := range p.Replacements {
		rp.Rows = append(rp.Rows, []Cell{txt(x.Meter), txt(x.Time.In(p.site.Location()).Format(time.DateTime)), num(x.OldFinal, strconv.FormatFloat(x.OldFinal, 'f', -1, 64)),
			num(x.NewInitial, strconv.FormatFloat(x.NewInitial, 'f', -1, 64)), txt(x.RecordedBy), txt(x.RecordedAt.In(p.site.Location()).Format(time.DateTime))})
	}
	out = append(out, rp)
	return out
}
