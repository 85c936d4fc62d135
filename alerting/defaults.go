package alerting

import (
	"time"

	"github.com/aqualoop/aqualoop/analytics"
)

// DefaultRules are the rules every site gets without a rules file: meter health, withdrawal plans
// and the compliance checks that need nothing but the site model. Leak rules need knowledge of
// the site (which branches, which thresholds) and come from rules files. A rules file's rule of
// the same name replaces a default; `disabled: true` removes it.
func DefaultRules() []Rule {
	rs := []Rule{
		{Name: "meter_stale", Kind: KindStale, Summary: "Meter {{meter}} has sent no reading for {{value}}",
			SummaryZH: "水表 {{meter}} 已 {{value}} 无读数",
			Runbook: Runbook{EN: "Check the edge collector's log and the meter's bus (cable, RS-485 termination, gateway power). If only this meter is silent, read it with `aqualoop-edge probe`.",
				ZH: "检查采集器日志和该表所在总线（线缆、RS-485 终端电阻、网关电源）。若仅此表无数据，用 `aqualoop-edge probe` 直接读取。"}},
		{Name: "edge_offline", Kind: KindEdgeOffline, Severity: SeverityCritical, For: time.Minute,
			Summary: "Edge collector {{edge}} is offline", SummaryZH: "采集器 {{edge}} 离线",
			Runbook: Runbook{EN: "Check the edge host (power, network, `systemctl status aqualoop-edge`). Readings are spooled on the edge and arrive when it reconnects.",
				ZH: "检查采集器主机（电源、网络、`systemctl status aqualoop-edge`）。读数已在边缘端缓存，恢复连接后补传。"}},
		{Name: "meter_stuck", Kind: KindStuck, Summary: "Totalizer of {{meter}} is not moving while water flows",
			SummaryZH: "水表 {{meter}} 有流量但累计值不变",
			Runbook: Runbook{EN: "Compare the meter's display with its flow rate on site; a stuck register or a blocked impeller needs the meter serviced or replaced (record the replacement).",
				ZH: "现场比对表头读数与瞬时流量；计数器卡滞或叶轮堵塞需检修或更换水表（登记换表记录）。"}},
		{Name: "meter_bad_quality", Kind: KindBadQuality, Summary: "Meter {{meter}} returns bad values ({{value}} in the window)",
			SummaryZH: "水表 {{meter}} 返回坏值（窗口内 {{value}} 次）",
			Runbook: Runbook{EN: "Read the point's status code in the readings (OPC UA BadSensorFailure, Modbus exception); check the sensor and its wiring.",
				ZH: "查看读数中的状态码（OPC UA BadSensorFailure、Modbus 异常码），检查传感器及接线。"}},
		{Name: "meter_reverse_steps", Kind: KindReverseSteps, Summary: "Totalizer of {{meter}} stepped backwards {{value}} times",
			SummaryZH: "水表 {{meter}} 累计值倒退 {{value}} 次",
			Runbook: Runbook{EN: "Reverse steps mean reverse flow through the meter or a faulty register: check the non-return valve upstream and the meter's installation direction.",
				ZH: "累计值倒退说明有倒流或计数器故障：检查上游止回阀及水表安装方向。"}},
		{Name: "meter_spikes", Kind: KindSpikes, Summary: "Meter {{meter}} jumped above Q4 {{value}} times (volume rejected)",
			SummaryZH: "水表 {{meter}} {{value}} 次读数跃变超过 Q4（已剔除）",
			Runbook: Runbook{EN: "Spikes are register glitches or wrong scaling: check the register map and scale in the edge config.",
				ZH: "跃变多为寄存器异常或量程换算错误：检查采集配置中的寄存器地址与系数。"}},
		{Name: "meter_reset_unrecorded", Kind: KindResetUnrecorded, Summary: "Meter {{meter}} was reset or replaced without a replacement record",
			SummaryZH: "水表 {{meter}} 归零或更换，但无换表记录",
			Runbook: Runbook{EN: "Record the old meter's final reading, the new meter's initial reading and the time; close this alert with them in the note.",
				ZH: "记录旧表末读数、新表初读数及更换时间，并在关闭本告警时填入处置说明。"}},
		{Name: "meter_coverage", Kind: KindCoverage, For: 10 * time.Minute, Summary: "Data coverage of {{meter}} is {{value}} this hour",
			SummaryZH: "水表 {{meter}} 本小时数据覆盖率 {{value}}",
			Runbook: Runbook{EN: "Gaps come from a silent meter or a lossy link: see the meter's stale and bad-quality alerts and the edge's spool metrics.",
				ZH: "数据缺口源于水表无数据或链路丢包：查看该表的无数据/坏值告警及采集器缓存指标。"}},
		{Name: "meter_fault_imbalance", Kind: KindMeterFault, For: 30 * time.Minute,
			Summary:   "Children of {{meter}} measure more than it does (ε = {{value}}): a meter fault, not a leak",
			SummaryZH: "{{meter}} 的下级表合计大于其读数（ε = {{value}}）：水表故障，不是漏损",
			Runbook: Runbook{EN: "A negative imbalance cannot be a leak: one of the meters reads high or the parent reads low. Compare them with a portable ultrasonic meter.",
				ZH: "负不平衡不可能是漏损：某块下级表偏大或上级表偏小。用便携式超声波流量计比对。"}},
		{Name: "plan_threshold", Kind: KindPlan, Summary: "Withdrawal plan {{plan}} is {{value}} used (threshold {{threshold}})",
			SummaryZH: "取水计划 {{plan}} 已用 {{value}}（阈值 {{threshold}}）",
			Runbook: Runbook{EN: "Review the largest intakes of the period (balance page), postpone non-essential use, and ask the water authority early if the plan must be raised.",
				ZH: "查看本期最大用水单元（水平衡页面），暂缓非必要用水；如需调增计划，尽早向水行政主管部门申请。"}},
		{Name: "plan_projected_overrun", Kind: KindPlanProjected, Summary: "Withdrawal plan {{plan}} is projected to be exceeded ({{value}} m³ projected)",
			SummaryZH: "取水计划 {{plan}} 预计超计划（预测 {{value}} m³）",
			Runbook: Runbook{EN: "The pace so far would exceed the plan by the period's end: find the units above their usual use and plan savings now.",
				ZH: "按当前用水速度期末将超计划：找出用水高于常态的单元，提前安排节水措施。"}},
		{Name: "closure_check", Kind: KindClosure, For: time.Hour, Summary: "GB/T 12452 closure check fails: unit intakes differ from total intake by {{value}}",
			SummaryZH: "GB/T 12452 闭合校核不通过：各单元取水量之和与总取水量相差 {{value}}",
			Runbook: Runbook{EN: "An unmetered branch or a faulty level-2 meter: compare level-1 and level-2 meters and look for an unmetered take-off.",
				ZH: "存在未计量支路或二级表故障：比对一、二级表读数，排查未装表的分支。"}},
		{Name: "meter_verification", Kind: KindVerification, Summary: "Meter {{meter}} verification due in {{value}} days",
			SummaryZH: "水表 {{meter}} 距检定到期 {{value}} 天",
			Runbook: Runbook{EN: "Book the verification (JJG 162) or the replacement with the metrology institute and update the meter register.",
				ZH: "向计量检定机构预约检定（JJG 162）或更换，并更新水表台账。"}},
		{Name: "metering_rate", Kind: KindMeteringRate, Summary: "Level {{level}} {{measure}} rate {{value}} is below the GB/T 24789 requirement",
			SummaryZH: "{{level}} 级{{measure_zh}}率 {{value}} 低于 GB/T 24789 要求",
			Runbook: Runbook{EN: "Install the missing meters of the level (see the metering page) or correct the register.",
				ZH: "按计量页面补装该级缺少的水表，或更正台账。"}},
		{Name: "reuse_rate_below_benchmark", Kind: KindReuseRate, For: time.Hour,
			Summary: "Reuse rate {{value}} is below the target {{target}}", SummaryZH: "重复利用率 {{value}} 低于目标 {{target}}",
			Runbook: Runbook{EN: "Check the reuse plant and cooling-loop circulation for outages; a stopped reuse plant sends make-up to fresh water.",
				ZH: "检查回用水站与循环冷却系统是否停运；回用站停运时补水改用新水。"}},
	}
	for i := range rs {
		rs[i].Default()
	}
	return rs
}

// siteRules is the effective rule set of one site: the defaults, overlaid by the platform's
// rules files and then by the site's own, a later rule replacing an earlier one of the same name.
func siteRules(s *analytics.Site, files []*RulesFile) []*Rule {
	var order []string
	byName := map[string]*Rule{}
	put := func(r Rule) {
		if _, ok := byName[r.Name]; !ok {
			order = append(order, r.Name)
		}
		byName[r.Name] = &r
	}
	for _, r := range DefaultRules() {
		put(r)
	}
	for _, pass := range []bool{false, true} {
		for _, f := range files {
			if (f.Site != "") != pass || pass && f.Site != s.ID {
				continue
			}
			for _, r := range f.Rules {
				put(r)
			}
		}
	}
	var out []*Rule
	for _, n := range order {
		if r := byName[n]; !r.Disabled && rulesMeters(r, s) {
			out = append(out, r)
		}
	}
	return out
}

// rulesMeters reports whether a platform-wide rule that names meters applies to the site: it
// does when the site has at least one of them.
func rulesMeters(r *Rule, s *analytics.Site) bool {
	if len(r.Meters) == 0 {
		return true
	}
	for _, m := range r.Meters {
		if _, ok := s.Meter(m); ok {
			return true
		}
	}
	return false
}
