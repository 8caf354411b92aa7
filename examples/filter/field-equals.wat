;; field-equals.wat: a Whisperer plugin filter written by hand in WAT
;; (sdk/ABI.md §6): filter "field-equals" delivers an event only when its
;; payload is a JSON object whose top-level member "field" equals "equals".
;;
;;   "filter": {"plugin": "field-equals", "kwargs": {"field": "status", "equals": "paid"}}
;;
;; "equals" is any JSON value, compared as written: "paid" matches
;; {"status": "paid"}, 5 matches {"amount": 5} but not {"amount": 5.0}, and
;; member names are compared as written too (escapes are not decoded). A
;; payload without the member, or that is not an object, is skipped.
;;
;; Build (wabt), from the repository root:
;;
;;   wat2wasm examples/filter/field-equals.wat -o examples/filter/field-equals.wasm
;;
;; The validator (whisperer_filter_validate) requires "field" (a string)
;; and "equals" and stores the kwargs as given; it receives {} when a hook
;; sends none, and answers that "field" is required.
(module
  (import "whisperer" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)

  ;; Constant documents and messages. Bytes 65536 and up are the input buffer.
  ;; MANIFEST: 88 bytes at 0
  (data (i32.const 0) "{\"abi\":1,\"name\":\"field-equals-wat\",\"filters\":[{\"name\":\"field-equals\",\"validator\":true}]}")
  ;; REQ_FIELD: 48 bytes at 256
  (data (i32.const 256) "{\"errors\":{\"field\":[\"This field is required.\"]}}")
  ;; BAD_FIELD: 44 bytes at 512
  (data (i32.const 512) "{\"errors\":{\"field\":[\"Not a valid string.\"]}}")
  ;; REQ_EQUALS: 49 bytes at 768
  (data (i32.const 768) "{\"errors\":{\"equals\":[\"This field is required.\"]}}")
  ;; NOTOBJ: 72 bytes at 1024
  (data (i32.const 1024) "{\"errors\":{\"non_field_errors\":[\"Invalid data. Expected a dictionary.\"]}}")
  ;; LOGKW: 64 bytes at 1280
  (data (i32.const 1280) "field-equals: kwargs need a string \"field\" and an \"equals\" value")
  ;; LOGEV: 68 bytes at 1536
  (data (i32.const 1536) "field-equals: the event document is not a JSON object with a payload")
  ;; LOGIDX: 37 bytes at 1792
  (data (i32.const 1792) "field-equals: no filter at this index")
  ;; KEY_FIELD: 5 bytes at 2048
  (data (i32.const 2048) "field")
  ;; KEY_EQUALS: 6 bytes at 2064
  (data (i32.const 2064) "equals")
  ;; KEY_PAYLOAD: 7 bytes at 2080
  (data (i32.const 2080) "payload")

  (func (export "whisperer_abi_v1"))

  ;; whisperer_alloc: one input buffer at 65536 (page 1), grown to fit; the
  ;; host reuses it, so handing out the same address every time is correct.
  (func (export "whisperer_alloc") (param $size i32) (result i32)
    (local $pages i32)
    (if (i32.gt_u (local.get $size) (i32.const 0x7ffe0000)) (then (return (i32.const 0))))
    (local.set $pages
      (i32.add (i32.const 1) (i32.shr_u (i32.add (local.get $size) (i32.const 65535)) (i32.const 16))))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 65536))

  ;; $pack returns ptr << 32 | len.
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len))))

  (func (export "whisperer_manifest") (result i64)
    (call $pack (i32.const 0) (i32.const 88)))

  ;; $ws returns the first index at or after $p that is not JSON whitespace.
  (func $ws (param $p i32) (param $end i32) (result i32)
    (local $c i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $p)))
        (br_if $done (i32.eqz
          (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.eq (local.get $c) (i32.const 9)))
                  (i32.or (i32.eq (local.get $c) (i32.const 10)) (i32.eq (local.get $c) (i32.const 13))))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (local.get $p))

  ;; $str: $p is at a '"'; returns the index after the closing quote, or 0
  ;; when the string does not end before $end.
  (func $str (param $p i32) (param $end i32) (result i32)
    (local $c i32)
    (local.set $p (i32.add (local.get $p) (i32.const 1)))
    (loop $next
      (if (i32.ge_u (local.get $p) (local.get $end)) (then (return (i32.const 0))))
      (local.set $c (i32.load8_u (local.get $p)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (if (i32.eq (local.get $c) (i32.const 34)) (then (return (local.get $p))))
      (if (i32.eq (local.get $c) (i32.const 92)) ;; backslash: skip the escaped byte
        (then (local.set $p (i32.add (local.get $p) (i32.const 1)))))
      (br $next))
    (i32.const 0))

  ;; $value: $p is at a JSON value; returns the index after it, or 0 when it
  ;; runs past $end. Objects and arrays are skipped by depth, strings in them
  ;; by $str; scalars end at a delimiter. Not a validator: the host sends
  ;; valid JSON.
  (func $value (param $p i32) (param $end i32) (result i32)
    (local $c i32) (local $depth i32)
    (if (i32.ge_u (local.get $p) (local.get $end)) (then (return (i32.const 0))))
    (local.set $c (i32.load8_u (local.get $p)))
    (if (i32.eq (local.get $c) (i32.const 34)) (then (return (call $str (local.get $p) (local.get $end)))))
    (if (i32.or (i32.eq (local.get $c) (i32.const 123)) (i32.eq (local.get $c) (i32.const 91)))
      (then
        (loop $next
          (if (i32.ge_u (local.get $p) (local.get $end)) (then (return (i32.const 0))))
          (local.set $c (i32.load8_u (local.get $p)))
          (if (i32.eq (local.get $c) (i32.const 34))
            (then
              (local.set $p (call $str (local.get $p) (local.get $end)))
              (if (i32.eqz (local.get $p)) (then (return (i32.const 0))))
              (br $next)))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (if (i32.or (i32.eq (local.get $c) (i32.const 123)) (i32.eq (local.get $c) (i32.const 91)))
            (then (local.set $depth (i32.add (local.get $depth) (i32.const 1)))))
          (if (i32.or (i32.eq (local.get $c) (i32.const 125)) (i32.eq (local.get $c) (i32.const 93)))
            (then
              (local.set $depth (i32.sub (local.get $depth) (i32.const 1)))
              (if (i32.eqz (local.get $depth)) (then (return (local.get $p))))))
          (br $next))))
    ;; a number, true, false or null
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $p)))
        (br_if $done (i32.or (i32.or (i32.eq (local.get $c) (i32.const 44)) (i32.eq (local.get $c) (i32.const 125)))
                             (i32.or (i32.eq (local.get $c) (i32.const 93)) (i32.le_u (local.get $c) (i32.const 32)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (local.get $p))

  ;; $eq reports whether the $n bytes at $a and $b are equal.
  (func $eq (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; $find looks up the member named by the $kn bytes at $k in the JSON object
  ;; at [$p, $end): it returns ptr << 32 | len of its value, -1 when the
  ;; object has no such member, -2 when [$p, $end) is not an object. The
  ;; value of a member named "payload" runs to the object's closing brace
  ;; unwalked when $last is set: the host writes it last (sdk/ABI.md §6).
  (func $find (param $p i32) (param $end i32) (param $k i32) (param $kn i32) (param $last i32) (result i64)
    (local $ks i32) (local $ke i32) (local $vs i32) (local $ve i32)
    (local.set $p (call $ws (local.get $p) (local.get $end)))
    (if (i32.or (i32.ge_u (local.get $p) (local.get $end)) (i32.ne (i32.load8_u (local.get $p)) (i32.const 123)))
      (then (return (i64.const -2))))
    (local.set $p (call $ws (i32.add (local.get $p) (i32.const 1)) (local.get $end)))
    (if (i32.and (i32.lt_u (local.get $p) (local.get $end)) (i32.eq (i32.load8_u (local.get $p)) (i32.const 125)))
      (then (return (i64.const -1))))
    (loop $member
      ;; "key"
      (if (i32.or (i32.ge_u (local.get $p) (local.get $end)) (i32.ne (i32.load8_u (local.get $p)) (i32.const 34)))
        (then (return (i64.const -2))))
      (local.set $ks (i32.add (local.get $p) (i32.const 1)))
      (local.set $p (call $str (local.get $p) (local.get $end)))
      (if (i32.eqz (local.get $p)) (then (return (i64.const -2))))
      (local.set $ke (i32.sub (local.get $p) (i32.const 1)))
      ;; :
      (local.set $p (call $ws (local.get $p) (local.get $end)))
      (if (i32.or (i32.ge_u (local.get $p) (local.get $end)) (i32.ne (i32.load8_u (local.get $p)) (i32.const 58)))
        (then (return (i64.const -2))))
      (local.set $vs (call $ws (i32.add (local.get $p) (i32.const 1)) (local.get $end)))
      (if (i32.and (i32.eq (i32.sub (local.get $ke) (local.get $ks)) (local.get $kn))
                   (call $eq (local.get $ks) (local.get $k) (local.get $kn)))
        (then
          (if (local.get $last)
            (then
              ;; the value ends before the closing brace and its whitespace
              (local.set $ve (local.get $end))
              (loop $trim
                (if (i32.gt_u (local.get $ve) (local.get $vs))
                  (then
                    (local.set $ve (i32.sub (local.get $ve) (i32.const 1)))
                    (br_if $trim (i32.le_u (i32.load8_u (local.get $ve)) (i32.const 32))))))
              (if (i32.ne (i32.load8_u (local.get $ve)) (i32.const 125)) (then (return (i64.const -2))))
              (local.set $ve (call $ws-back (local.get $vs) (local.get $ve))))
            (else
              (local.set $ve (call $value (local.get $vs) (local.get $end)))
              (if (i32.eqz (local.get $ve)) (then (return (i64.const -2))))))
          (return (call $pack (local.get $vs) (i32.sub (local.get $ve) (local.get $vs))))))
      (local.set $p (call $value (local.get $vs) (local.get $end)))
      (if (i32.eqz (local.get $p)) (then (return (i64.const -2))))
      (local.set $p (call $ws (local.get $p) (local.get $end)))
      (if (i32.ge_u (local.get $p) (local.get $end)) (then (return (i64.const -2))))
      (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 44))
        (then
          (local.set $p (call $ws (i32.add (local.get $p) (i32.const 1)) (local.get $end)))
          (br $member))))
    (i64.const -1))

  ;; $ws-back returns $e moved back over whitespace, not before $s.
  (func $ws-back (param $s i32) (param $e i32) (result i32)
    (block $done
      (loop $next
        (br_if $done (i32.le_u (local.get $e) (local.get $s)))
        (br_if $done (i32.gt_u (i32.load8_u (i32.sub (local.get $e) (i32.const 1))) (i32.const 32)))
        (local.set $e (i32.sub (local.get $e) (i32.const 1)))
        (br $next)))
    (local.get $e))

  ;; $fieldName is the packed span of the "field" kwarg's string content,
  ;; -1 when absent, -2 when the kwargs are not an object, -3 when it is not
  ;; a string.
  (func $fieldName (param $kw i32) (param $n i32) (result i64)
    (local $r i64) (local $p i32) (local $len i32)
    (local.set $r (call $find (local.get $kw) (i32.add (local.get $kw) (local.get $n))
      (i32.const 2048) (i32.const 5) (i32.const 0)))
    (if (i64.lt_s (local.get $r) (i64.const 0)) (then (return (local.get $r))))
    (local.set $p (i32.wrap_i64 (i64.shr_u (local.get $r) (i64.const 32))))
    (local.set $len (i32.wrap_i64 (local.get $r)))
    (if (i32.or (i32.lt_u (local.get $len) (i32.const 2)) (i32.ne (i32.load8_u (local.get $p)) (i32.const 34)))
      (then (return (i64.const -3))))
    (call $pack (i32.add (local.get $p) (i32.const 1)) (i32.sub (local.get $len) (i32.const 2))))

  ;; whisperer_filter_validate(idx, kwargs, n): the kwargs need a string
  ;; "field" and an "equals"; valid kwargs are stored as given (0).
  (func (export "whisperer_filter_validate") (param $idx i32) (param $kw i32) (param $n i32) (result i64)
    (local $r i64)
    (if (local.get $idx)
      (then
        (call $log (i32.const 3) (i32.const 1792) (i32.const 37))
        (return (i64.const -1))))
    (local.set $r (call $fieldName (local.get $kw) (local.get $n)))
    (if (i64.eq (local.get $r) (i64.const -2)) (then (return (call $pack (i32.const 1024) (i32.const 72)))))
    (if (i64.eq (local.get $r) (i64.const -1)) (then (return (call $pack (i32.const 256) (i32.const 48)))))
    (if (i64.eq (local.get $r) (i64.const -3)) (then (return (call $pack (i32.const 512) (i32.const 44)))))
    (if (i64.lt_s (call $find (local.get $kw) (i32.add (local.get $kw) (local.get $n))
                    (i32.const 2064) (i32.const 6) (i32.const 0)) (i64.const 0))
      (then (return (call $pack (i32.const 768) (i32.const 49)))))
    (i64.const 0))

  ;; whisperer_filter(idx, ptr, kwargs_len, event_len): the kwargs at ptr,
  ;; the event document {"event_type": …, "payload": …} after them. 1
  ;; delivers, 0 skips, -1 is an error (kwargs the validator would refuse).
  (func (export "whisperer_filter") (param $idx i32) (param $ptr i32) (param $kn i32) (param $en i32) (result i32)
    (local $name i64) (local $want i64) (local $payload i64) (local $got i64) (local $ev i32) (local $pp i32)
    (if (local.get $idx)
      (then
        (call $log (i32.const 3) (i32.const 1792) (i32.const 37))
        (return (i32.const -1))))
    (local.set $name (call $fieldName (local.get $ptr) (local.get $kn)))
    (local.set $want (call $find (local.get $ptr) (i32.add (local.get $ptr) (local.get $kn))
      (i32.const 2064) (i32.const 6) (i32.const 0)))
    (if (i32.or (i64.lt_s (local.get $name) (i64.const 0)) (i64.lt_s (local.get $want) (i64.const 0)))
      (then
        (call $log (i32.const 3) (i32.const 1280) (i32.const 64))
        (return (i32.const -1))))
    (local.set $ev (i32.add (local.get $ptr) (local.get $kn)))
    (local.set $payload (call $find (local.get $ev) (i32.add (local.get $ev) (local.get $en))
      (i32.const 2080) (i32.const 7) (i32.const 1)))
    (if (i64.lt_s (local.get $payload) (i64.const 0))
      (then
        (call $log (i32.const 3) (i32.const 1536) (i32.const 68))
        (return (i32.const -1))))
    (local.set $pp (i32.wrap_i64 (i64.shr_u (local.get $payload) (i64.const 32))))
    (local.set $got (call $find (local.get $pp) (i32.add (local.get $pp) (i32.wrap_i64 (local.get $payload)))
      (i32.wrap_i64 (i64.shr_u (local.get $name) (i64.const 32))) (i32.wrap_i64 (local.get $name)) (i32.const 0)))
    (if (i64.lt_s (local.get $got) (i64.const 0)) (then (return (i32.const 0))))
    (if (i32.ne (i32.wrap_i64 (local.get $got)) (i32.wrap_i64 (local.get $want))) (then (return (i32.const 0))))
    (call $eq (i32.wrap_i64 (i64.shr_u (local.get $got) (i64.const 32)))
              (i32.wrap_i64 (i64.shr_u (local.get $want) (i64.const 32)))
              (i32.wrap_i64 (local.get $want)))))
