package main

import (
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/wxgate/wxgate/gateway"
	"github.com/wxgate/wxgate/internal/config"
)

// reloader applies a new configuration on SIGHUP. Only the gateway's apps
// change while running (added, removed, keys rotated): the gateway swaps its
// app table at once, so no callback is dropped. A configuration that does not
// load changes nothing and is logged with every problem. It is used by one
// goroutine.
type reloader struct {
	node nodeSpec // node.cfg is the configuration in effect
	gw   *gateway.Server
	log  *slog.Logger
}

func (r *reloader) reload() {
	next, err := config.LoadFor(r.node.path, os.Environ(), r.node.needs)
	if err != nil {
		r.log.Error("reload failed: keeping the configuration in use", "file", r.node.path, "err", err)
		return
	}
	var appKeys, otherKeys []string
	for _, k := range r.node.cfg.Changed(next) {
		if strings.HasPrefix(k, "apps[") {
			appKeys = append(appKeys, k)
		} else {
			otherKeys = append(otherKeys, k)
		}
	}
	if r.gw == nil {
		r.log.Warn("reload: the processor applies a new configuration only on a restart", "file", r.node.path, "changed", append(appKeys, otherKeys...))
		return
	}
	if err := r.gw.SetApps(gatewayApps(next)); err != nil {
		r.log.Error("reload failed: keeping the configuration in use", "file", r.node.path, "err", err)
		return
	}
	added, removed := appDiff(r.node.cfg.Apps, next.Apps)
	r.node.cfg.Apps = next.Apps
	r.log.Info("configuration reloaded", "file", r.node.path, "apps", len(next.Apps), "added", added, "removed", removed, "changed", appKeys)
	if len(otherKeys) > 0 {
		r.log.Warn("reload: only apps change while running; these keys take effect on a restart", "keys", otherKeys)
	}
	if r.node.roles.processor && len(appKeys) > 0 {
		r.log.Warn("reload: the processor keeps the apps it started with until a restart (sends, access tokens, the admin API's apps)")
	}
}

// appDiff lists the appids only in next (added) and only in prev (removed).
func appDiff(prev, next []config.App) (added, removed []string) {
	has := func(apps []config.App, id string) bool {
		return slices.ContainsFunc(apps, func(a config.App) bool { return a.AppID == id })
	}
	for _, a := range next {
		if !has(prev, a.AppID) {
			added = append(added, a.AppID)
		}
	}
	for _, a := range prev {
		if !has(next, a.AppID) {
			removed = append(removed, a.AppID)
		}
	}
	return added, removed
}
