package app

import "net/http"

func (a *App) newHandler() (http.Handler, error) { return http.NotFoundHandler(), nil }
