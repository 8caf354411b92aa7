package api

// HookChunk is how many hooks a list loads at a time, for the tests.
const HookChunk = hookChunk
