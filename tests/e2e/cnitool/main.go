// cnitool: a small CNI runtime built on libcni, used by the e2e tests to drive plumb the way a
// real consumer (containerd, podman, cri-o) does: through libcni's CNIConfig, its result cache
// and its conflist handling.
//
// Usage:
//
//	cnitool add|check|del|gc|status <conflist-file> <netns-path> [containerID] [ifname]
//
// Environment:
//
//	CNI_PATH       colon-separated plugin directories (required)
//	CNI_CACHE_DIR  libcni's cache directory (default: libcni's own, /var/lib/cni)
//	CAP_ARGS       capability args as a JSON object, e.g. {"portMappings":[...],"ips":[...]}
//	CNI_ARGS       plugin args as "K=V;K=V"
//	VALID          gc only, required: the valid attachments, "containerID/ifname,containerID/ifname"
//	               (set and empty: none is valid)
//
// containerID defaults to a hash of the netns path, ifname to eth0. netns-path may be "" (for a
// DEL after the sandbox is gone) and is ignored by gc and status.
//
// libcni 1.1.2 predates CNI 1.1 and has no GC or STATUS API, so gc and status call every
// plugin of the list directly through libcni's invoke package, with "cniVersion" raised to
// 1.1.0 (the first version to define these verbs). A plugin whose VERSION answer does not
// include 1.1.0 is skipped, as libcni 1.2 would skip it. Unlike libcni 1.2's GCNetworkList,
// gc here does not first DEL the cached attachments missing from VALID: it sends only the GC
// verb, so a test sees what the plugin's own GC does.
//
// On success add prints the result JSON on stdout; on failure every verb prints the error on
// stderr and exits 1.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
)

const gcVersion = "1.1.0"

func usage() {
	fmt.Fprintf(os.Stderr, "usage: %s add|check|del|gc|status <conflist-file> <netns-path> [containerID] [ifname]\n",
		filepath.Base(os.Args[0]))
	os.Exit(2)
}

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "cnitool: "+format+"\n", a...)
	os.Exit(1)
}

func parseCniArgs(text string) ([][2]string, error) {
	var out [][2]string
	for _, item := range strings.Split(text, ";") {
		if item == "" {
			continue
		}
		kv := strings.SplitN(item, "=", 2)
		if len(kv) != 2 {
			return nil, fmt.Errorf("CNI_ARGS entry %q is not K=V", item)
		}
		out = append(out, [2]string{kv[0], kv[1]})
	}
	return out, nil
}

type attachment struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
}

func parseValid(text string) ([]attachment, error) {
	out := []attachment{} // an empty list, never null: "nothing is valid"
	for _, item := range strings.Split(text, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.SplitN(item, "/", 2)
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("VALID entry %q is not containerID/ifname", item)
		}
		out = append(out, attachment{parts[0], parts[1]})
	}
	return out, nil
}

func supports(versions []string, want string) bool {
	for _, v := range versions {
		if v == want {
			return true
		}
	}
	return false
}

// runEach sends verb to every plugin of the list, the way libcni 1.2 does for GC and STATUS.
func runEach(ctx context.Context, verb string, list *libcni.NetworkConfigList, paths []string, inject map[string]interface{}) error {
	for _, plugin := range list.Plugins {
		name := plugin.Network.Type
		path, err := invoke.FindInPath(name, paths)
		if err != nil {
			return err
		}
		info, err := invoke.GetVersionInfo(ctx, path, nil)
		if err != nil {
			return fmt.Errorf("plugin %s: VERSION: %w", name, err)
		}
		if !supports(info.SupportedVersions(), gcVersion) {
			fmt.Fprintf(os.Stderr, "cnitool: %s: plugin %s does not support CNI %s, skipped\n", strings.ToLower(verb), name, gcVersion)
			continue
		}
		values := map[string]interface{}{"name": list.Name, "cniVersion": gcVersion}
		for k, v := range inject {
			values[k] = v
		}
		conf, err := libcni.InjectConf(plugin, values)
		if err != nil {
			return err
		}
		args := &invoke.Args{Command: verb, Path: strings.Join(paths, ":")}
		if err := invoke.ExecPluginWithoutResult(ctx, path, conf.Bytes, args, nil); err != nil {
			return fmt.Errorf("plugin %s: %s: %w", name, verb, err)
		}
	}
	return nil
}

func main() {
	if len(os.Args) < 4 || len(os.Args) > 6 {
		usage()
	}
	verb, confFile, netns := os.Args[1], os.Args[2], os.Args[3]
	containerID := ""
	if len(os.Args) > 4 {
		containerID = os.Args[4]
	}
	if containerID == "" {
		sum := sha256.Sum256([]byte(netns))
		containerID = hex.EncodeToString(sum[:])[:16]
	}
	ifname := "eth0"
	if len(os.Args) > 5 && os.Args[5] != "" {
		ifname = os.Args[5]
	}

	list, err := libcni.ConfListFromFile(confFile)
	if err != nil {
		die("%s: %v", confFile, err)
	}
	var paths []string
	for _, p := range filepath.SplitList(os.Getenv("CNI_PATH")) {
		if p != "" {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		die("CNI_PATH is not set")
	}
	cniArgs, err := parseCniArgs(os.Getenv("CNI_ARGS"))
	if err != nil {
		die("%v", err)
	}
	var capArgs map[string]interface{}
	if s := os.Getenv("CAP_ARGS"); s != "" {
		if err := json.Unmarshal([]byte(s), &capArgs); err != nil {
			die("CAP_ARGS is not a JSON object: %v", err)
		}
	}

	cni := libcni.NewCNIConfigWithCacheDir(paths, os.Getenv("CNI_CACHE_DIR"), nil)
	rt := &libcni.RuntimeConf{
		ContainerID:    containerID,
		NetNS:          netns,
		IfName:         ifname,
		Args:           cniArgs,
		CapabilityArgs: capArgs,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	switch verb {
	case "add":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			die("add: %v", err)
		}
		out, err := json.MarshalIndent(result, "", "  ")
		if err != nil {
			die("add: encoding the result: %v", err)
		}
		fmt.Println(string(out))
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			die("check: %v", err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			die("del: %v", err)
		}
	case "gc":
		text, set := os.LookupEnv("VALID")
		if !set {
			die("gc: set VALID to the valid attachments (VALID= for none)")
		}
		valid, err := parseValid(text)
		if err != nil {
			die("%v", err)
		}
		if err := runEach(ctx, "GC", list, paths, map[string]interface{}{"cni.dev/valid-attachments": valid}); err != nil {
			die("gc: %v", err)
		}
	case "status":
		if err := runEach(ctx, "STATUS", list, paths, nil); err != nil {
			die("status: %v", err)
		}
	default:
		usage()
	}
}
