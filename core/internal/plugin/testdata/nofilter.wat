;; nofilter.wat: declares a filter but does not export whisperer_filter.
;; Build: wat2wasm nofilter.wat -o nofilter.wasm
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"filters\":[\"f\"]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 17)))
