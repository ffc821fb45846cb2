import Lake
open Lake DSL

/-! malot's Lean project for PutnamBench: the toolchain, Mathlib and REPL that check PutnamBench proofs
(malot/data/putnambench was formalised against Lean v4.27.0 and Mathlib v4.27.0, see its SOURCE.json). -/

package «malot_check_putnambench» where
  leanOptions := #[⟨`autoImplicit, false⟩]

require mathlib from git
  "https://github.com/leanprover-community/mathlib4" @ "v4.27.0"

require REPL from git
  "https://github.com/leanprover-community/repl" @ "v4.27.0"

@[default_target]
lean_lib «MalotCheck» where
