import Lake
open Lake DSL

/-! malot's Lean project: the toolchain, Mathlib and REPL that check MiniF2F proofs
(malot/data/minif2f was formalised against Lean v4.24.0 and Mathlib v4.24.0). -/

package «malot_check» where
  leanOptions := #[⟨`autoImplicit, false⟩]

require mathlib from git
  "https://github.com/leanprover-community/mathlib4" @ "v4.24.0"

require REPL from git
  "https://github.com/leanprover-community/repl" @ "v4.24.0"

@[default_target]
lean_lib «MalotCheck» where
