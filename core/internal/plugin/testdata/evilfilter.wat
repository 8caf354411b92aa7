;; evilfilter.wat: hostile plugin filters. floop never returns; ftrap hits
;; unreachable; fcode logs a reason and returns 7 (neither deliver nor
;; skip); fskip skips; fvjson's validator answers invalid JSON for any
;; kwargs but {} (so the load probe passes); fdeliver delivers.
;; Build: wat2wasm evilfilter.wat -o evilfilter.wasm
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  ;; MANIFEST: 91 bytes at 0
  (data (i32.const 0) "{\"filters\":[\"floop\",\"ftrap\",\"fcode\",\"fskip\",{\"name\":\"fvjson\",\"validator\":true},\"fdeliver\"]}")
  ;; BADJSON: 12 bytes at 256
  (data (i32.const 256) "{\"kwargs\": {")
  ;; REASON: 21 bytes at 512
  (data (i32.const 512) "fcode: kwargs refused")
  (func (export "whisperer_abi_v1"))
  (func (export "whisperer_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "whisperer_manifest") (result i64) (i64.const 91))
  (func (export "whisperer_filter") (param $idx i32) (param i32 i32 i32 i32) (result i32)
    (if (i32.eqz (local.get $idx)) (then (loop $forever (br $forever))))
    (if (i32.eq (local.get $idx) (i32.const 1)) (then (unreachable)))
    (if (i32.eq (local.get $idx) (i32.const 2))
      (then
        (call $log (i32.const 3) (i32.const 512) (i32.const 21))
        (return (i32.const 7))))
    (i32.eq (local.get $idx) (i32.const 5)))
  (func (export "whisperer_filter_validate") (param $idx i32) (param $ptr i32) (param $n i32) (result i64)
    (if (result i64) (i32.gt_u (local.get $n) (i32.const 2))
      (then (i64.or (i64.shl (i64.const 256) (i64.const 32)) (i64.const 12)))
      (else (i64.const 0)))))
