// What a mode file implements, and the pieces modes share. Internal to plugin/core: front ends
// never see this header (nor the netlink types in it).
//
// A mode is one file under plugin/core/modes/ holding, for its plan type P:
//   Status validate(const P&, const AttachRequest&)           the plan's own fields, no kernel
//   void addSteps(const P&, Context&, std::vector<Step>&)     its attach steps, each with its
//                                                             inverse, in order
//   Status detach(const P&, Detach&)                          idempotent removal
//   Status check(const P&, Check&)                            its part of CHECK
//   Status sweep(const P&, Sweep&)                            CNI GC of what no record names
// The engine calls them through std::visit with one overload set, so a plan type added to
// core::Plan does not compile until every verb has an overload for it.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "plugin/core/kernel.h"
#include "plugin/core/steps.h"
#include "plugin/core/store.h"
#include "plugin/core/types.h"

namespace plumb::core::modes {

using Ns = Kernel::Ns;

// One attach, as its steps run: what earlier steps found or made, for later ones and the undo.
struct Context {
  Context(const AttachRequest& r, Store& s, Kernel& k) : req(r), store(s), kernel(k) {}

  // A copy: allocating addresses (AttachRequest::address_source) fills in its addresses and
  // routes, and the bridge plan's gateway addresses and masquerade. Steps read it when they
  // run, not when they are built.
  AttachRequest req;
  Store& store;
  Kernel& kernel;
  bool in_container = true;  // Placement::kContainer
  std::string host_name;     // a veth's host end
  std::string tmp_name;      // made under this name; renamed to req.key.ifname in the netns
  // The container's end is born in its netns under req.key.ifname (a veth's peer): no rename,
  // and its stamp goes on with "set ... up". Set by the mode before addContainerSteps.
  bool born_named = false;
  // Where the container's end goes: its netns, or the host when Docker moves it itself.
  Ns ctr_ns = Kernel::kHost;
  int host_index = 0;  // a veth's host end, once made
  int ctr_index = 0;   // the container's interface, once named
  // The links as made, read before they come up: the result is built from these, so nothing
  // asks the kernel anything after the last link comes up (see "record the result").
  std::optional<nl::LinkInfo> host_link;
  std::optional<nl::LinkInfo> ctr_link;
  // The container's device has no netdev (a VF bound to vfio-pci): nothing is moved or
  // configured in the netns, and the result names the device by its PCI address.
  std::string userspace_pci;
  // A host-side link (a bridge port, an OVS port's veth end) whose forwarding the
  // announcement waits for; 0: announce at once.
  int announce_after_port = 0;
  AttachmentRecord record;  // as stored: "adding" first, "ready" at the end
  AttachResult result;
};

// Removing one attachment: the record may be missing (a DEL after a failed ADD, or a second
// DEL), the netns may be gone.
struct Detach {
  const AttachmentKey& key;
  const std::optional<AttachmentRecord>& record;
  std::string netns;  // empty: none known
  Kernel& kernel;
  Store& store;
  std::string stamp;  // Engine::ownerStamp(key): nothing without it is deleted
};

// CNI GC past the store: what plumb made for network in a mode, not listed in keep.
struct Sweep {
  const std::string& network;
  const std::vector<AttachmentKey>& keep;
  Kernel& kernel;
  Store& store;
};

// Checking one attachment: its interface was found in the netns, up.
struct Check {
  const AttachRequest& req;
  const AttachmentRecord& record;
  const nl::LinkInfo& link;
  Kernel& kernel;
  Store& store;
};

// Bridge mode (bridge.cc).
Status validate(const VethBridgePlan& plan, const AttachRequest& req);
void addSteps(const VethBridgePlan& plan, Context& ctx, std::vector<Step>& steps);
Status detach(const VethBridgePlan& plan, Detach& d);
Status check(const VethBridgePlan& plan, Check& c);
Status sweep(const VethBridgePlan& plan, Sweep& s);
// Bridge-level work the engine does for a network rather than an attachment.
Result<bool> ensureBridgeForNetwork(Kernel& k, const std::string& network,
                                    const VethBridgePlan& plan, int mtu);
// made_here: this process made it a moment ago, stamped or not (the stamp is a second
// request, which may have failed).
Status deleteOwnBridge(Kernel& k, const std::string& bridge, bool only_if_unused,
                       bool made_here = false);

// Macvlan mode (macvlan.cc).
Status validate(const MacvlanPlan& plan, const AttachRequest& req);
void addSteps(const MacvlanPlan& plan, Context& ctx, std::vector<Step>& steps);
Status detach(const MacvlanPlan& plan, Detach& d);
Status check(const MacvlanPlan& plan, Check& c);
Status sweep(const MacvlanPlan& plan, Sweep& s);

// Passthrough mode (passthrough.cc).
Status validate(const PassthroughPlan& plan, const AttachRequest& req);
void addSteps(const PassthroughPlan& plan, Context& ctx, std::vector<Step>& steps);
Status detach(const PassthroughPlan& plan, Detach& d);
Status check(const PassthroughPlan& plan, Check& c);
Status sweep(const PassthroughPlan& plan, Sweep& s);
// The device a plan names, checked as fit to move (Docker's CreateNetwork asks ahead).
Result<nl::LinkInfo> findPassthroughDevice(Kernel& k, const PassthroughPlan& plan);
// What a device is given on its way into a netns.
struct DeviceSettings {
  std::string name;  // its name once in the target
  int mtu = 0;       // 0: unchanged
  std::optional<MacAddr> mac;
  std::string alias;
};
// Moves dev (on the host) into target, renamed and set on arrival in one request when no name
// is in the way, else through a temporary netns; its altnames dropped first.
// On a failure half-way the device goes back to where it was, as restore has it.
Status moveDevice(Kernel& k, const nl::LinkInfo& dev, Ns target, const DeviceSettings& settings,
                  const DeviceRestore& restore);
// moveDevice into the container's netns under its final name (req.key.ifname), stamped, with
// the request's MTU and MAC; sets ctr_index and ctr_link. An interface of that name in the
// netns is an error before anything moves.
Status moveDeviceNamed(Context& ctx, const nl::LinkInfo& dev, const DeviceRestore& restore);
// Gives the device at index (in where) back to the host as restore describes, altnames too.
Status restoreDevice(Kernel& k, Ns where, int index, const DeviceRestore& restore);
// What removal gives back, read off the device before its first change.
DeviceRestore restoreOf(Kernel& k, const nl::LinkInfo& dev);
// After the container's netns died: the kernel hands a physical device back to the host,
// possibly renamed devN. Finds it (PCI address, permanent MAC, stamp) and restores it; a
// device that is gone (a veth stand-in dies with the netns) is success.
Status restoreReturnedDevice(Kernel& k, const DeviceRestore& restore, const std::string& stamp);

// Open vSwitch mode (ovs.cc).
Status validate(const OvsPlan& plan, const AttachRequest& req);
void addSteps(const OvsPlan& plan, Context& ctx, std::vector<Step>& steps);
Status detach(const OvsPlan& plan, Detach& d);
Status check(const OvsPlan& plan, Check& c);
Status sweep(const OvsPlan& plan, Sweep& s);
// The OVSDB socket to use: the configured one, else $PLUMB_OVSDB, else OVS's default.
std::string ovsdbSocket(const std::string& configured);
// Every OVSDB call's bound ($PLUMB_OVSDB_TIMEOUT_MS, 5 s by default).
std::chrono::milliseconds ovsdbTimeout();
// Whether OVSDB has a bridge by that name; an error when ovsdb-server does not answer.
Result<bool> ovsBridgeExists(const std::string& ovsdb, const std::string& bridge);
// Whether ovsdb-server answers and has bridge (CNI STATUS).
Status ovsReady(const std::string& ovsdb, const std::string& bridge);
// The attachments whose ports plumb made on that OVSDB, as the ports' external_ids name them
// (plumb doctor); an error when ovsdb-server does not answer.
Result<std::vector<AttachmentKey>> ovsPortOwners(const std::string& ovsdb);
// Removes the ports plumb made on that OVSDB for key, and their host ends while they carry
// key's stamp (plumb doctor, once it has seen key has no record).
Status removeOvsPortsOf(const std::string& ovsdb, const AttachmentKey& key, Kernel& k);

// SR-IOV mode (sriov.cc).
Status validate(const SriovPlan& plan, const AttachRequest& req);
void addSteps(const SriovPlan& plan, Context& ctx, std::vector<Step>& steps);
Status detach(const SriovPlan& plan, Detach& d);
Status check(const SriovPlan& plan, Check& c);
Status sweep(const SriovPlan& plan, Sweep& s);
// CHECK of a VF under a userspace driver, which has no interface in the netns to look at:
// whether the attachment still holds it and its PF-side settings are as asked. nullopt: the
// VF has a netdev, and CHECK goes on as for any interface.
std::optional<Status> checkUserspaceVf(const SriovPlan& plan, const AttachRequest& req,
                                       const AttachmentRecord& record, Kernel& k, Store& store);
// Whether the plan's VF is there, or its PF has one free (CNI STATUS).
Status sriovReady(Kernel& k, Store& store, const SriovPlan& plan);

// Shared pieces (shared.cc), called by the modes rather than branched on.

// A veth named ctx.host_name on the host, its peer ctx.tmp_name born in the container's netns
// (or on the host for Docker). A stale pair stamped with this attachment's key (a crashed
// run's) is replaced; anything else by that name is an error. Sets host_index and host_link.
Status createVethPair(Context& ctx, int mtu);
// Undoes createVethPair: by name, since the index is unknown when the step failed half-way.
void deleteVethPair(Context& ctx);
// Inside the container's netns: the interface named and stamped, IPv6 turned on when it gets
// an IPv6 address, the addresses, up, then the routes. On the host side (Docker moves and
// names it): the interface only stamped.
void addContainerSteps(Context& ctx, std::vector<Step>& steps);
// Links plumb stamped for this key: the container's interface in the netns, ends left on the
// host. The detach of every mode that makes its links.
Status deleteStampedLinks(Detach& d);
// Neighbours learn the new addresses at once rather than on their first miss (an address may
// have belonged to another container a moment ago). Behind a bridge port that the kernel has
// yet to enable, or an OVS port the switch had not yet applied when the container's end came up
// (ctx.announce_after_port), a child process does it once the port forwards and the interface
// sends (netlink/announce.h); elsewhere the kernel has sent the gratuitous ARPs (arp_notify,
// set when naming the link) and plumb sends the unsolicited NAs.
void announce(Context& ctx, const MacAddr& mac);
// Whether a link is the kind a mode makes (CHECK).
Status checkKind(const Check& c, const std::string& kind);

}  // namespace plumb::core::modes
