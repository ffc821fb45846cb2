import Mathlib

/-! A smoke test that the project builds: `lake build` elaborates this file against Mathlib. -/

theorem malot_smoke (a b : ℕ) : a + b = b + a := by
  omega
