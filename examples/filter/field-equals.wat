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
  ;; LOGEV: 54 bytes at 1536
  (data (i32.const 1536) "field-equals: the member index does not fit its length")
  ;; LOGIDX: 37 bytes at 1792
  (data (i32.const 1792) "field-equals: no filter at this index")
  ;; KEY_FIELD: 5 bytes at 2048
  (data (i32.const 2048) "field")
  ;; KEY_EQUALS: 6 bytes at 2064
  (data (i32.const 2064) "equals")

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

  ;; $eq reports whether the $n bytes at $a and $b are equal: eight bytes per
  ;; step, and the last one to seven in one masked load when memory holds
  ;; eight bytes there (every loop step costs a guest ~80 ns, sdk/ABI.md §8).
  (func $eq (param $a i32) (param $b i32) (param $n i32) (result i32)
    (local $memend i32)
    (loop $words
      (if (i32.ge_u (local.get $n) (i32.const 8))
        (then
          (if (i64.ne (i64.load (local.get $a)) (i64.load (local.get $b))) (then (return (i32.const 0))))
          (local.set $a (i32.add (local.get $a) (i32.const 8)))
          (local.set $b (i32.add (local.get $b) (i32.const 8)))
          (local.set $n (i32.sub (local.get $n) (i32.const 8)))
          (br $words))))
    (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
    (local.set $memend (i32.shl (memory.size) (i32.const 16)))
    (if (i32.and (i32.le_u (i32.add (local.get $a) (i32.const 8)) (local.get $memend))
                 (i32.le_u (i32.add (local.get $b) (i32.const 8)) (local.get $memend)))
      (then
        (return (i64.eqz (i64.and
          (i64.xor (i64.load (local.get $a)) (i64.load (local.get $b)))
          (i64.sub (i64.shl (i64.const 1) (i64.extend_i32_u (i32.shl (local.get $n) (i32.const 3)))) (i64.const 1)))))))
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
  ;; at [$p, $end) by walking it byte by byte (for the validator, which runs
  ;; when a hook is saved; whisperer_filter reads the host's member index
  ;; instead). It returns ptr << 32 | len of the member's value, -1 when the
  ;; object has no such member, -2 when [$p, $end) is not an object.
  (func $find (param $p i32) (param $end i32) (param $k i32) (param $kn i32) (result i64)
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
      (local.set $ve (call $value (local.get $vs) (local.get $end)))
      (if (i32.eqz (local.get $ve)) (then (return (i64.const -2))))
      (if (i32.and (i32.eq (i32.sub (local.get $ke) (local.get $ks)) (local.get $kn))
                   (call $eq (local.get $ks) (local.get $k) (local.get $kn)))
        (then (return (call $pack (local.get $vs) (i32.sub (local.get $ve) (local.get $vs))))))
      (local.set $p (call $ws (local.get $ve) (local.get $end)))
      (if (i32.ge_u (local.get $p) (local.get $end)) (then (return (i64.const -2))))
      (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 44))
        (then
          (local.set $p (call $ws (i32.add (local.get $p) (i32.const 1)) (local.get $end)))
          (br $member))))
    (i64.const -1))

  ;; $lookup finds the member named by the $kn bytes at $k among $count
  ;; entries of the member index at $tab, from entry $from (sdk/ABI.md §6).
  ;; Spans are offsets from $ptr, checked against $limit bytes. It returns
  ;; ptr << 32 | len of the value, or -1.
  (func $lookup (param $ptr i32) (param $limit i32) (param $tab i32) (param $from i32) (param $count i32)
                (param $k i32) (param $kn i32) (result i64)
    (local $e i32) (local $stop i32) (local $off i32) (local $len i32)
    (local.set $e (i32.add (i32.add (local.get $tab) (i32.const 8)) (i32.shl (local.get $from) (i32.const 4))))
    (local.set $stop (i32.add (local.get $e) (i32.shl (local.get $count) (i32.const 4))))
    (block $none
      (loop $entry
        (br_if $none (i32.ge_u (local.get $e) (local.get $stop)))
        (local.set $off (i32.load (local.get $e)))
        (if (i32.and
              (i32.eq (i32.load offset=4 (local.get $e)) (local.get $kn))
              (i32.and (i32.le_u (local.get $off) (local.get $limit))
                       (i32.le_u (i32.add (local.get $off) (local.get $kn)) (local.get $limit))))
          (then
            (if (call $eq (i32.add (local.get $ptr) (local.get $off)) (local.get $k) (local.get $kn))
              (then
                (local.set $off (i32.load offset=8 (local.get $e)))
                (local.set $len (i32.load offset=12 (local.get $e)))
                (br_if $none (i32.or (i32.gt_u (local.get $off) (local.get $limit)) (i32.gt_u (local.get $len) (local.get $limit))))
                (br_if $none (i32.gt_u (i32.add (local.get $off) (local.get $len)) (local.get $limit)))
                (return (call $pack (i32.add (local.get $ptr) (local.get $off)) (local.get $len)))))))
        (local.set $e (i32.add (local.get $e) (i32.const 16)))
        (br $entry)))
    (i64.const -1))

  ;; $fieldName is the packed span of the "field" kwarg's string content,
  ;; -1 when absent, -2 when the kwargs are not an object, -3 when it is not
  ;; a string.
  (func $fieldName (param $kw i32) (param $n i32) (result i64)
    (local $r i64) (local $p i32) (local $len i32)
    (local.set $r (call $find (local.get $kw) (i32.add (local.get $kw) (local.get $n))
      (i32.const 2048) (i32.const 5)))
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
                    (i32.const 2064) (i32.const 6)) (i64.const 0))
      (then (return (call $pack (i32.const 768) (i32.const 49)))))
    (i64.const 0))

  ;; whisperer_filter(idx, ptr, kwargs_len, event_len, index_len): the kwargs
  ;; at ptr, the event document {"event_type": …, "payload": …} after them,
  ;; then the member index of the kwargs and the payload. It reads the index
  ;; only: no JSON is walked. 1 delivers, 0 skips, -1 is an error (kwargs the
  ;; validator would refuse, or an index that does not fit).
  (func (export "whisperer_filter") (param $idx i32) (param $ptr i32) (param $kn i32) (param $en i32) (param $xn i32)
        (result i32)
    (local $tab i32) (local $limit i32) (local $nk i32) (local $np i32)
    (local $name i64) (local $want i64) (local $got i64) (local $p i32) (local $len i32)
    (if (local.get $idx)
      (then
        (call $log (i32.const 3) (i32.const 1792) (i32.const 37))
        (return (i32.const -1))))
    (local.set $limit (i32.add (local.get $kn) (local.get $en)))
    (local.set $tab (i32.add (local.get $ptr) (local.get $limit)))
    (if (i32.lt_u (local.get $xn) (i32.const 8)) (then (return (call $badIndex))))
    (local.set $nk (i32.load (local.get $tab)))
    (local.set $np (i32.load offset=4 (local.get $tab)))
    (if (i32.or (i32.gt_u (local.get $nk) (i32.const 0xffffff)) (i32.gt_u (local.get $np) (i32.const 0xffffff)))
      (then (return (call $badIndex))))
    (if (i32.gt_u (i32.add (i32.const 8) (i32.shl (i32.add (local.get $nk) (local.get $np)) (i32.const 4))) (local.get $xn))
      (then (return (call $badIndex))))
    ;; kwargs: "field" must be a string, "equals" any value
    (local.set $name (call $lookup (local.get $ptr) (local.get $kn) (local.get $tab) (i32.const 0) (local.get $nk)
      (i32.const 2048) (i32.const 5)))
    (local.set $want (call $lookup (local.get $ptr) (local.get $kn) (local.get $tab) (i32.const 0) (local.get $nk)
      (i32.const 2064) (i32.const 6)))
    (if (i32.or (i64.lt_s (local.get $name) (i64.const 0)) (i64.lt_s (local.get $want) (i64.const 0)))
      (then (return (call $badKwargs))))
    (local.set $p (i32.wrap_i64 (i64.shr_u (local.get $name) (i64.const 32))))
    (local.set $len (i32.wrap_i64 (local.get $name)))
    (if (i32.lt_u (local.get $len) (i32.const 2)) (then (return (call $badKwargs))))
    (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 34)) (then (return (call $badKwargs))))
    ;; the payload member of that name, compared as written
    (local.set $got (call $lookup (local.get $ptr) (local.get $limit) (local.get $tab) (local.get $nk) (local.get $np)
      (i32.add (local.get $p) (i32.const 1)) (i32.sub (local.get $len) (i32.const 2))))
    (if (i64.lt_s (local.get $got) (i64.const 0)) (then (return (i32.const 0))))
    (if (i32.ne (i32.wrap_i64 (local.get $got)) (i32.wrap_i64 (local.get $want))) (then (return (i32.const 0))))
    (call $eq (i32.wrap_i64 (i64.shr_u (local.get $got) (i64.const 32)))
              (i32.wrap_i64 (i64.shr_u (local.get $want) (i64.const 32)))
              (i32.wrap_i64 (local.get $want))))

  (func $badKwargs (result i32)
    (call $log (i32.const 3) (i32.const 1280) (i32.const 64))
    (i32.const -1))

  (func $badIndex (result i32)
    (call $log (i32.const 3) (i32.const 1536) (i32.const 54))
    (i32.const -1)))
