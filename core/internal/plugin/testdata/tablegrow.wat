;; Hostile: grows its table by ten million entries (80 MB of Go heap in
;; wazero, outside memory_limit_mb). The host caps every table's maximum.
;; (A plugin module has a memory: the host's halt check needs one.)
(module
  (memory 1)
  (table 10 funcref)
  (func (export "grow") (result i32)
    (table.grow 0 (ref.null func) (i32.const 10000000))))
