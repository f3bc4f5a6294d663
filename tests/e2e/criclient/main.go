// criclient: the few calls of the CRI RuntimeService (runtime.v1) that kubelet makes to give a
// pod its network: RunPodSandbox, PodSandboxStatus, StopPodSandbox, RemovePodSandbox. Built
// by tests/e2e/cri_e2e.sh with Debian's golang-google-grpc-dev (GOPATH mode). Debian ships no
// Go bindings of the CRI API, so the few messages are written out here in protobuf's wire
// format, field numbers as k8s.io/cri-api's api.proto gives them.
//
//	criclient -socket PATH run NAME UID NAMESPACE    prints the sandbox id
//	criclient -socket PATH ip ID                     prints the pod's IP (PodSandboxStatus)
//	criclient -socket PATH stop ID
//	criclient -socket PATH remove ID
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
)

// rawCodec hands gRPC the message bytes as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// Protobuf's wire format, as much as these messages need.
func varint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// bytesField appends a length-delimited field (a string or a nested message).
func bytesField(b []byte, field int, v []byte) []byte {
	b = varint(b, uint64(field)<<3|2)
	b = varint(b, uint64(len(v)))
	return append(b, v...)
}

// field returns the first length-delimited field number want of msg.
func field(msg []byte, want int) ([]byte, error) {
	for len(msg) > 0 {
		key, n := readVarint(msg)
		if n == 0 {
			return nil, errors.New("truncated key")
		}
		msg = msg[n:]
		num, typ := int(key>>3), key&7
		switch typ {
		case 0:
			_, n = readVarint(msg)
			if n == 0 {
				return nil, errors.New("truncated varint")
			}
			msg = msg[n:]
		case 1:
			if len(msg) < 8 {
				return nil, errors.New("truncated fixed64")
			}
			msg = msg[8:]
		case 5:
			if len(msg) < 4 {
				return nil, errors.New("truncated fixed32")
			}
			msg = msg[4:]
		case 2:
			l, n := readVarint(msg)
			if n == 0 || uint64(len(msg)-n) < l {
				return nil, errors.New("truncated field")
			}
			v := msg[n : n+int(l)]
			msg = msg[n+int(l):]
			if num == want {
				return v, nil
			}
		default:
			return nil, fmt.Errorf("unsupported wire type %d", typ)
		}
	}
	return nil, nil
}

func readVarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * uint(i))
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

func call(conn *grpc.ClientConn, method string, req []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var resp []byte
	err := conn.Invoke(ctx, "/runtime.v1.RuntimeService/"+method, &req, &resp,
		grpc.ForceCodec(rawCodec{}))
	return resp, err
}

func idRequest(id string) []byte { return bytesField(nil, 1, []byte(id)) }

func main() {
	socket := flag.String("socket", "", "containerd's socket")
	flag.Parse()
	args := flag.Args()
	if *socket == "" || len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: criclient -socket PATH run NAME UID NAMESPACE | ip|stop|remove ID")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, "unix://"+*socket, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		fmt.Fprintln(os.Stderr, "criclient: connect:", err)
		os.Exit(1)
	}
	defer conn.Close()
	var out string
	switch args[0] {
	case "run":
		if len(args) != 4 {
			fmt.Fprintln(os.Stderr, "criclient: run NAME UID NAMESPACE")
			os.Exit(2)
		}
		// PodSandboxMetadata{name 1, uid 2, namespace 3}; PodSandboxConfig{metadata 1,
		// hostname 2, log_directory 3}; RunPodSandboxRequest{config 1}.
		meta := bytesField(nil, 1, []byte(args[1]))
		meta = bytesField(meta, 2, []byte(args[2]))
		meta = bytesField(meta, 3, []byte(args[3]))
		config := bytesField(nil, 1, meta)
		config = bytesField(config, 2, []byte(args[1]))
		resp, err := call(conn, "RunPodSandbox", bytesField(nil, 1, config))
		if err == nil {
			var id []byte
			id, err = field(resp, 1) // RunPodSandboxResponse.pod_sandbox_id
			out = string(id)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "criclient: RunPodSandbox:", err)
			os.Exit(1)
		}
	case "ip":
		resp, err := call(conn, "PodSandboxStatus", idRequest(args[1]))
		if err == nil {
			// PodSandboxStatusResponse.status 1 -> PodSandboxStatus.network 5 ->
			// PodSandboxNetworkStatus.ip 1.
			var status, network, ip []byte
			if status, err = field(resp, 1); err == nil {
				if network, err = field(status, 5); err == nil {
					ip, err = field(network, 1)
				}
			}
			out = string(ip)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "criclient: PodSandboxStatus:", err)
			os.Exit(1)
		}
	case "stop", "remove":
		method := map[string]string{"stop": "StopPodSandbox", "remove": "RemovePodSandbox"}[args[0]]
		if _, err := call(conn, method, idRequest(args[1])); err != nil {
			fmt.Fprintln(os.Stderr, "criclient: "+method+":", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "criclient: unknown verb", args[0])
		os.Exit(2)
	}
	if out != "" {
		fmt.Println(out)
	}
}
