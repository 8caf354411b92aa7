;; Hostile: declares a table of a million entries, over the host's limit.
(module
  (table 1000000 funcref))
