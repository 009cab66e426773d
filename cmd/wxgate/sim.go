package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/sim"
)

// Demo templates every simulated app offers through gettemplate.
const (
	demoOneTimeTemplate  = "ORDER_SHIPPED_00000000000000000000000000000"
	demoLongTermTemplate = "SERVICE_NOTICE_0000000000000000000000000000"
)

// runSim plays WeChat for the apps of a wxgate configuration: it serves the APIs
// wxgate calls on --listen and pushes events, signed and encrypted with each
// app's settings, to that configuration's callback URL.
func runSim(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: wxgate sim [--config FILE] [--listen ADDR] [--mode M] [--format F]\n\nPlays WeChat for the apps of a wxgate configuration.\n\nflags:")
		fs.PrintDefaults()
	}
	path := fs.String("config", "", "wxgate configuration `file` whose apps to simulate")
	listen := fs.String("listen", "127.0.0.1:9090", "`address` of the simulated WeChat API and control API")
	mode := fs.String("mode", sim.ModeSecure, "push `mode`: plaintext, compatible or secure")
	format := fs.String("format", sim.FormatJSON, "push `format`: json or xml")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path, os.Environ())
	if err != nil {
		return err
	}
	if len(cfg.Apps) == 0 {
		return fmt.Errorf("%w: apps: the simulator needs at least one app (try --config examples/wxgate.yaml)", config.ErrInvalid)
	}
	sc := sim.Config{}
	for _, a := range cfg.Apps {
		sc.Apps = append(sc.Apps, sim.AppConfig{
			AppID: a.AppID, Secret: a.Secret, Token: a.Token, EncodingAESKey: a.EncodingAESKey,
			Mode: *mode, Format: *format,
			PushURL: "http://" + cfg.Listen + "/wechat/" + a.AppID,
			Templates: []sim.Template{
				{ID: demoOneTimeTemplate, Title: "Order shipped", Type: sim.TemplateOneTime,
					Content: "商品名称:{{thing1.DATA}}\n发货时间:{{time2.DATA}}\n快递单号:{{character_string3.DATA}}"},
				{ID: demoLongTermTemplate, Title: "Service notice", Type: sim.TemplateLongTerm,
					Content: "通知内容:{{thing1.DATA}}\n日期:{{date2.DATA}}"},
			},
		})
	}
	log := newLogger(cfg.LogLevel, stderr)
	s, err := sim.New(sc, log)
	if err != nil {
		return fmt.Errorf("%w: %v", config.ErrInvalid, err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *listen, err)
	}
	log.Info("simulating WeChat", "addr", ln.Addr().String(), "apps", len(sc.Apps), "mode", *mode, "format", *format,
		"one_time_template", demoOneTimeTemplate, "long_term_template", demoLongTermTemplate)
	return s.Serve(ctx, ln)
}
