;; custom.wat: the documented "custom" retry countdown as a hand-written
;; Whisperer ABI v1 plugin (sdk/ABI.md). Key "custom"; kwarg "factor", an
;; integer >= 1; waits 2*factor*retry_count seconds when retry_count is even,
;; else factor*retry_count.
;;
;; Build (wabt):   wat2wasm custom.wat -o custom.wasm
;;
;; Simplifications a Go or C plugin does not have: only plain JSON integers
;; are accepted for factor ("5" and 5.0 are refused as "A valid integer is
;; required."), and kwargs are stored as given (unknown names are kept).
;; Factors above 2^30 saturate so the result cannot overflow.
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)

  ;; Constant documents and messages. Bytes 4096 and up are the input buffer.
  ;; MANIFEST: 78 bytes at 0
  (data (i32.const 0) "{\"abi\":1,\"name\":\"custom-countdown-wat\",\"countdowns\":[\"custom\"],\"callbacks\":[]}")
  ;; REQUIRED: 49 bytes at 256
  (data (i32.const 256) "{\"errors\":{\"factor\":[\"This field is required.\"]}}")
  ;; INVALID: 54 bytes at 512
  (data (i32.const 512) "{\"errors\":{\"factor\":[\"A valid integer is required.\"]}}")
  ;; MIN: 74 bytes at 768
  (data (i32.const 768) "{\"errors\":{\"factor\":[\"Ensure this value is greater than or equal to 1.\"]}}")
  ;; NOTOBJ: 72 bytes at 1024
  (data (i32.const 1024) "{\"errors\":{\"non_field_errors\":[\"Invalid data. Expected a dictionary.\"]}}")
  ;; LOGBAD: 42 bytes at 1280
  (data (i32.const 1280) "custom: kwargs have no integer factor >= 1")
  ;; LOGIDX: 34 bytes at 1536
  (data (i32.const 1536) "custom: no countdown at this index")
  ;; KEY: 8 bytes at 1792
  (data (i32.const 1792) "\"factor\"")

  ;; $status of the last $parse: 0 ok, 1 factor missing, 2 not an integer,
  ;; 3 kwargs not an object.
  (global $status (mut i32) (i32.const 0))

  (func (export "whisperer_abi_v1"))

  ;; whisperer_alloc: one input buffer at 4096, grown to fit; the host reuses
  ;; it, so handing out the same address every time is correct.
  (func (export "whisperer_alloc") (param $size i32) (result i32)
    (local $pages i32)
    (if (i32.gt_u (local.get $size) (i32.const 0x7fff0000)) (then (return (i32.const 0))))
    (local.set $pages
      (i32.shr_u (i32.add (i32.add (local.get $size) (i32.const 4096)) (i32.const 65535)) (i32.const 16)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 4096))

  ;; $pack returns ptr << 32 | len.
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len))))

  (func (export "whisperer_manifest") (result i64)
    (call $pack (i32.const 0) (i32.const 78)))

  ;; $skip_ws returns the first index in [i, end) that is not JSON whitespace.
  (func $skip_ws (param $i i32) (param $end i32) (result i32)
    (local $c i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $i)))
        (br_if $done (i32.eqz
          (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.eq (local.get $c) (i32.const 9)))
                  (i32.or (i32.eq (local.get $c) (i32.const 10)) (i32.eq (local.get $c) (i32.const 13))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $i))

  ;; $parse reads the integer value of "factor" in the kwargs at [p, p+n)
  ;; and sets $status.
  (func $parse (param $p i32) (param $n i32) (result i64)
    (local $end i32) (local $i i32) (local $neg i32) (local $acc i64) (local $digits i32) (local $c i32)
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (local.set $i (call $skip_ws (local.get $p) (local.get $end)))
    (if (i32.or (i32.ge_u (local.get $i) (local.get $end))
                (i32.ne (i32.load8_u (local.get $i)) (i32.const 123))) ;; '{'
      (then (global.set $status (i32.const 3)) (return (i64.const 0))))
    ;; Find the 8 bytes "factor" (quotes included).
    (block $found
      (loop $scan
        (if (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $end))
          (then (global.set $status (i32.const 1)) (return (i64.const 0))))
        (br_if $found (i64.eq (i64.load (local.get $i)) (i64.load (i32.const 1792))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (local.set $i (call $skip_ws (i32.add (local.get $i) (i32.const 8)) (local.get $end)))
    (if (i32.or (i32.ge_u (local.get $i) (local.get $end))
                (i32.ne (i32.load8_u (local.get $i)) (i32.const 58))) ;; ':'
      (then (global.set $status (i32.const 2)) (return (i64.const 0))))
    (local.set $i (call $skip_ws (i32.add (local.get $i) (i32.const 1)) (local.get $end)))
    (if (i32.and (i32.lt_u (local.get $i) (local.get $end))
                 (i32.eq (i32.load8_u (local.get $i)) (i32.const 45))) ;; '-'
      (then (local.set $neg (i32.const 1)) (local.set $i (i32.add (local.get $i) (i32.const 1)))))
    (block $end_digits
      (loop $digit
        (br_if $end_digits (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $c (i32.sub (i32.load8_u (local.get $i)) (i32.const 48)))
        (br_if $end_digits (i32.gt_u (local.get $c) (i32.const 9)))
        (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 10)) (i64.extend_i32_u (local.get $c))))
        (if (i64.gt_u (local.get $acc) (i64.const 0x40000000))
          (then (local.set $acc (i64.const 0x40000000))))
        (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $digit)))
    (if (i32.eqz (local.get $digits))
      (then (global.set $status (i32.const 2)) (return (i64.const 0))))
    ;; A fraction or exponent makes it a non-integer.
    (if (i32.lt_u (local.get $i) (local.get $end))
      (then
        (local.set $c (i32.load8_u (local.get $i)))
        (if (i32.or (i32.eq (local.get $c) (i32.const 46))
                    (i32.eq (i32.or (local.get $c) (i32.const 32)) (i32.const 101))) ;; '.', 'e', 'E'
          (then (global.set $status (i32.const 2)) (return (i64.const 0))))))
    (global.set $status (i32.const 0))
    (select (i64.sub (i64.const 0) (local.get $acc)) (local.get $acc) (local.get $neg)))

  (func (export "whisperer_countdown") (param $idx i32) (param $retry i32) (param $p i32) (param $n i32) (result i64)
    (local $factor i64) (local $v i64)
    (if (local.get $idx)
      (then (call $log (i32.const 3) (i32.const 1536) (i32.const 34)) (return (i64.const -1))))
    (local.set $factor (call $parse (local.get $p) (local.get $n)))
    (if (i32.or (global.get $status) (i64.lt_s (local.get $factor) (i64.const 1)))
      (then (call $log (i32.const 3) (i32.const 1280) (i32.const 42)) (return (i64.const -1))))
    (local.set $v (i64.mul (local.get $factor) (i64.extend_i32_u (local.get $retry))))
    (if (result i64) (i32.and (local.get $retry) (i32.const 1))
      (then (local.get $v))
      (else (i64.shl (local.get $v) (i64.const 1)))))

  (func (export "whisperer_validate") (param $idx i32) (param $p i32) (param $n i32) (result i64)
    (local $factor i64)
    (if (local.get $idx)
      (then (call $log (i32.const 3) (i32.const 1536) (i32.const 34)) (return (i64.const -1))))
    (local.set $factor (call $parse (local.get $p) (local.get $n)))
    (if (i32.eq (global.get $status) (i32.const 3))
      (then (return (call $pack (i32.const 1024) (i32.const 72)))))
    (if (i32.eq (global.get $status) (i32.const 1))
      (then (return (call $pack (i32.const 256) (i32.const 49)))))
    (if (i32.eq (global.get $status) (i32.const 2))
      (then (return (call $pack (i32.const 512) (i32.const 54)))))
    (if (i64.lt_s (local.get $factor) (i64.const 1))
      (then (return (call $pack (i32.const 768) (i32.const 74)))))
    (i64.const 0)))
