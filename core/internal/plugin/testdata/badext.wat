;; badext.wat: declares a filter and a transform with a validator, but
;; whisperer_transform has the wrong signature and whisperer_filter is
;; missing: refused at load, every problem listed.
;; Build: wat2wasm badext.wat -o badext.wasm
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"filters\":[\"f\"],\"transforms\":[{\"name\":\"t\",\"validator\":true}]}")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 62))
  (func (export "whisperer_transform") (param i32 i32 i32 i32) (result i64) (i64.const 0)))
