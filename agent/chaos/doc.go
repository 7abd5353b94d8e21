// Package chaos drives the real agent and plugin binaries through scripted faults — a full
// disk, a stopped sink plugin, a processor that panics, a destination that refuses, kill -9
// of the agent, a long outage — and checks figures, not only survival: what was lost, what
// was repeated, how late the alerts came, how much memory the agent took.
//
// The scenarios are tests that run only with TDA_CHAOS=1 (`make chaos`); every run prints a
// table: fault | expected | happened | figures.
package chaos
