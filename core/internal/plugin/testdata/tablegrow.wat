;; Hostile: grows its table by ten million entries (80 MB of Go heap in
;; wazero, outside memory_limit_mb). The host caps every table's maximum.
(module
  (table 10 funcref)
  (func (export "grow") (result i32)
    (table.grow 0 (ref.null func) (i32.const 10000000))))
