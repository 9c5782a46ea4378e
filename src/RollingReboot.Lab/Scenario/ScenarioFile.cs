using System.Text.Json;
using System.Text.Json.Serialization;

namespace RollingReboot.Lab.Scenario;

/// <summary>A scenario file as in the lab contract. Omitted fields take the contract's defaults.</summary>
public sealed class ScenarioFile
{
    public string Name { get; set; } = "scenario";

    public string? Description { get; set; }

    public PoolSpec Pool { get; set; } = new();

    public CloudStackSpec? CloudStack { get; set; }

    public MigrationSpec Migration { get; set; } = new();

    public List<HostSpec> Hosts { get; set; } = [];

    public List<SrSpec> Srs { get; set; } = [];

    public List<VmSpec> Vms { get; set; } = [];

    public List<GenerateSpec> Generate { get; set; } = [];

    public List<FaultSpec> Faults { get; set; } = [];

    /// <summary>Lab extension: networks beside the management network, each with a PIF per host (for --migration-network).</summary>
    public List<NetworkSpec> Networks { get; set; } = [];

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };
}

public sealed class PoolSpec
{
    public string Name { get; set; } = "CLUSTER-1";

    /// <summary>A xapi version (24.19.0) or a named profile (xcp-ng-8.2, xcp-ng-8.3, xenserver-8): see <see cref="XapiProfile"/>.</summary>
    public string XapiVersion { get; set; } = "24.19.0";

    /// <summary>Lab extension: the product on a bare version number, XCP-ng (default) or XenServer; a profile name implies it.</summary>
    public string? ProductBrand { get; set; }

    public HaSpec? Ha { get; set; }

    /// <summary>Lab extension: pool.migration_compression (xapi 22.33.0+): migrations without a compress option are compressed.</summary>
    public bool MigrationCompression { get; set; }

    /// <summary>Lab extension: false makes every host answer JSON-RPC with text/xml, as hosts before JSON-RPC did.</summary>
    public bool JsonRpc { get; set; } = true;

    /// <summary>Lab extension: the pool's XAPI user name and password (defaults root / a generated password).</summary>
    public string? User { get; set; }

    /// <summary>Lab extension: seconds a restarted toolstack answers HOST_STILL_BOOTING before it serves.</summary>
    public double ToolstackStartSeconds { get; set; } = 5;

    /// <summary>Lab extension: how long before xapi starts on a booting host its sshd answers (at most the reboot time).
    /// sshd.service needs only the network; xapi.service (xen-api scripts/xapi.service) waits for xcp-networkd, xenopsd-xc,
    /// xcp-rrdd, time-sync.target and more.</summary>
    public double SshBeforeXapiSeconds { get; set; } = 10;

    /// <summary>Lab extension: the pool's other_config at the start (e.g. {"auto_poweron": "true"}).</summary>
    public Dictionary<string, string>? OtherConfig { get; set; }

    /// <summary>Lab extension: the update repository (XenServer 8: what pool.sync_updates brings; XCP-ng: what yum lists).</summary>
    public UpdatesSpec? Updates { get; set; }
}

/// <summary>Lab extension <c>pool.updates</c>: the updates the repository holds and how long installing them takes.</summary>
public sealed class UpdatesSpec
{
    public List<UpdateSpec> List { get; set; } = [];

    /// <summary>Simulated seconds host.apply_updates (or updater.py update) takes on one host.</summary>
    public double ApplySeconds { get; set; } = 90;

    /// <summary>The updateinfo checksum pool.sync_updates returns (default: a SHA-256 of the canonical list).</summary>
    public string? Hash { get; set; }

    /// <summary>XenServer: the repository was already synced when the lab starts (GET /updates answers at once);
    /// default false: nothing synced yet, GET /updates answers 500 until pool.sync_updates.</summary>
    public bool SyncedAtStart { get; set; }
}

/// <summary>One update of the repository: an updateinfo entry (ocaml/xapi/updateinfo.ml UpdateInfo) and its RPMs.</summary>
public sealed class UpdateSpec
{
    public string Id { get; set; } = "";

    public string Summary { get; set; } = "";

    public string Description { get; set; } = "";

    /// <summary>Full names, "name-version-release.arch".</summary>
    public List<string> Rpms { get; set; } = [];

    public UpdateGuidanceSpec Guidance { get; set; } = new();

    public List<LivepatchSpec> Livepatches { get; set; } = [];
}

/// <summary>An update's guidance per kind, in xapi's UpdateInfo names (RebootHost, RestartToolstack, EvacuateHost,
/// RestartDeviceModel, RestartVM).</summary>
public sealed class UpdateGuidanceSpec
{
    public List<string> Mandatory { get; set; } = [];

    public List<string> Recommended { get; set; } = [];

    public List<string> Full { get; set; } = [];

    public List<string> Livepatch { get; set; } = [];
}

/// <summary>A livepatch an update carries (ocaml/xapi/updateinfo.ml LivePatch).</summary>
public sealed class LivepatchSpec
{
    public string Component { get; set; } = "";

    public string BaseBuildId { get; set; } = "";

    public string BaseVersion { get; set; } = "";

    public string BaseRelease { get; set; } = "";

    public string ToVersion { get; set; } = "";

    public string ToRelease { get; set; } = "";
}

public sealed class HaSpec
{
    public bool Enabled { get; set; }

    public int? TimeoutSeconds { get; set; } = 180;

    public int HostFailuresToTolerate { get; set; } = 1;

    public bool AllowOvercommit { get; set; } = true;

    public string? HeartbeatSr { get; set; } = "nfs-primary";

    /// <summary>Lab extension: simulated seconds pool.disable_ha / enable_ha take (real pools: the HA daemon on every
    /// host, minutes on large pools; ocaml/xapi/xapi_ha.ml). 0: at once.</summary>
    public double TransitionSeconds { get; set; }
}

public sealed class CloudStackSpec
{
    public string ClusterName { get; set; } = "CLUSTER-1";

    public string Zone { get; set; } = "ZONE-1";

    public string Pod { get; set; } = "POD-1";

    /// <summary>Managed, Unmanaged, or (lab extension) PrepareUnmanaged / PrepareUnmanagedError: left by an unmanage that did not finish.</summary>
    public string ManagedState { get; set; } = "Managed";

    /// <summary>Lab extension: async jobs already running in CloudStack when the lab starts.</summary>
    public List<AsyncJobSpec> AsyncJobs { get; set; } = [];

    /// <summary>Lab extension, <c>direct.agent.scan.interval</c>: seconds between scans that load the hosts of Managed clusters.</summary>
    public double ScanIntervalSeconds { get; set; } = 90;

    /// <summary>Lab extension: seconds one host's connect takes once a scan loads it (a pool's hosts connect one at a time).</summary>
    public double ConnectSeconds { get; set; } = 10;

    /// <summary>Lab extension, <c>default.page.size</c> (-1: unlimited).</summary>
    public int DefaultPageSize { get; set; } = 500;

    /// <summary>Lab extension, <c>enforce.post.requests.and.timestamps</c>.</summary>
    public bool EnforcePostRequestsAndTimestamps { get; set; }

    /// <summary>Lab extension: commands the lab keys' role may not call (401 "...is not available for user").</summary>
    public List<string> DeniedCommands { get; set; } = [];

    /// <summary>Lab extension: CloudStack's side of hosts (resource state, tags, dedication, the state a PrepareUnmanaged(Error) start leaves).</summary>
    public List<CloudStackHostSpec> Hosts { get; set; } = [];

    /// <summary>Lab extension: service offerings with host tags, for <c>vms[].serviceOffering</c>.</summary>
    public List<ServiceOfferingSpec> ServiceOfferings { get; set; } = [];

    /// <summary>Lab extension: affinity groups of any CloudStack type ("host affinity", "non-strict host anti-affinity", "ExplicitDedication"...).</summary>
    public List<AffinityGroupSpec> AffinityGroups { get; set; } = [];

    /// <summary>Lab extension: VMs' owners (a project or an account) and service offerings.</summary>
    public List<CloudStackVmSpec> Vms { get; set; } = [];
}

public sealed class CloudStackHostSpec
{
    public string Name { get; set; } = "";

    /// <summary>Enabled, Disabled, Maintenance, PrepareForMaintenance, ErrorInMaintenance.</summary>
    public string ResourceState { get; set; } = "Enabled";

    public List<string> HostTags { get; set; } = [];

    /// <summary>An account the host is dedicated to (ExplicitDedication group DedicatedGrp-ACCOUNT).</summary>
    public string? DedicatedTo { get; set; }

    /// <summary>With managedState PrepareUnmanaged(Error): Up (default: never disconnected), Disconnected or Alert.</summary>
    public string? State { get; set; }
}

public sealed class ServiceOfferingSpec
{
    public string Name { get; set; } = "";

    /// <summary>CloudStack's comma-separated host tags: a VM of this offering runs only on a host with all of them.</summary>
    public string? HostTags { get; set; }
}

public sealed class AffinityGroupSpec
{
    public string Name { get; set; } = "";

    public string Type { get; set; } = "host anti-affinity";

    public List<string> Vms { get; set; } = [];
}

public sealed class CloudStackVmSpec
{
    public string Name { get; set; } = "";

    /// <summary>The project owning the VM: listed only when a projectid is asked for, as CloudStack does.</summary>
    public string? Project { get; set; }

    public string? Account { get; set; }

    public string? ServiceOffering { get; set; }
}

/// <summary>
/// Lab extension, <c>cloudstack.asyncJobs[]</c>: a job on exactly one of <see cref="Host"/>, <see cref="Vm"/> or the
/// <see cref="Cluster"/>, pending for <see cref="DurationSeconds"/> from the lab's start (null: until the lab stops).
/// </summary>
public sealed class AsyncJobSpec
{
    /// <summary>CloudStack's <c>cmd</c>: the API command's Java class (org.apache.cloudstack.api.command.admin.vm.MigrateVMCmd).</summary>
    public string Cmd { get; set; } = "";

    public string? Host { get; set; }

    public string? Vm { get; set; }

    public bool Cluster { get; set; }

    public double? DurationSeconds { get; set; }

    public string Account { get; set; } = "admin";

    /// <summary>Lab extension: the job is owned by this project's account (listAsyncJobs never shows it).</summary>
    public string? Project { get; set; }
}

public sealed class MigrationSpec
{
    public double StreamMBps { get; set; } = 120;

    public double HostLinkMBps { get; set; } = 250;

    public double SetupSeconds { get; set; } = 6;

    public double DirtyRatio { get; set; } = 0.1;

    /// <summary>Lab extension: bytes on the wire per stream byte of a compressed migration (VM.pool_migrate compress).</summary>
    public double CompressionRatio { get; set; } = 0.5;

    /// <summary>Lab extension: stream MB/s (before compression) one migration's compressor handles: a CPU bound.</summary>
    public double CompressMBps { get; set; } = 300;
}

/// <summary>
/// Lab extension: a network with a PIF on each host (or on <see cref="Hosts"/>), its own link per host, as a dedicated
/// migration network. <see cref="Unplugged"/> and <see cref="NoIp"/> name hosts whose PIF on it is not currently_attached
/// or has no IP (XAPI then refuses migrations to them over it: REQUIRED_PIF_IS_UNPLUGGED, INTERFACE_HAS_NO_IP).
/// </summary>
public sealed class NetworkSpec
{
    public string Name { get; set; } = "";

    /// <summary>Default xenbr1, xenbr2... in order.</summary>
    public string? Bridge { get; set; }

    /// <summary>The bandwidth of each host's link on this network, MB/s.</summary>
    public double LinkMBps { get; set; } = 1000;

    /// <summary>PIF_metrics.speed in Mbit/s (default linkMBps x 8; 0: unknown, as XAPI shows a link it cannot read).</summary>
    public long? SpeedMbps { get; set; }

    /// <summary>Hosts with a PIF on it (default: all).</summary>
    public List<string>? Hosts { get; set; }

    public List<string> Unplugged { get; set; } = [];

    public List<string> NoIp { get; set; } = [];
}

public sealed class HostSpec
{
    public string Name { get; set; } = "";

    public long MemoryMiB { get; set; } = 262144;

    public long Dom0MemoryMiB { get; set; } = 4096;

    public bool Master { get; set; }

    public double RebootSeconds { get; set; } = 300;

    /// <summary>host.power_on_mode: "" (XAPI cannot power it on), "wake-on-lan", "iLO", "DRAC" or a custom plugin's name.</summary>
    public string PowerOnMode { get; set; } = "";

    /// <summary>Lab extension: the power-on plugin does not answer "True" (a BMC that does not answer), so host.power_on
    /// fails as xapi_host.ml power_on does.</summary>
    public bool PowerOnFails { get; set; }

    /// <summary>Null: as the profile has it (enabled, except a XenServer host left disabled by host.apply_updates).</summary>
    public bool? Enabled { get; set; }

    /// <summary>
    /// The host has been patched and needs its reboot, in the way its product says so (see docs/lab.md): XCP-ng:
    /// other_config.rpm_patch_installation_time after boot_time; XenServer from xapi 24.10.0: the state host.apply_updates
    /// leaves (disabled, mandatory guidance reboot_host); 1.303.0 to 24.9: guidance reboot_host; older: updates_requiring_reboot.
    /// </summary>
    public bool PendingReboot { get; set; } = true;

    /// <summary>Lab extension: the host's pending guidances, set as they are (instead of what pendingReboot implies).</summary>
    public GuidanceSpec? Guidances { get; set; }

    /// <summary>Lab extension: ids of pool.updates.list entries pending on this host.</summary>
    public List<string> Updates { get; set; } = [];
}

/// <summary>Lab extension, <c>hosts[].guidances</c>: host.pending_guidances (mandatory), _recommended and _full.</summary>
public sealed class GuidanceSpec
{
    public List<string> Mandatory { get; set; } = [];

    public List<string> Recommended { get; set; } = [];

    public List<string> Full { get; set; } = [];
}

public sealed class SrSpec
{
    public string Name { get; set; } = "";

    public bool Shared { get; set; } = true;

    public string? Host { get; set; }

    /// <summary>Lab extension: a clustered (GFS2) SR, as SR.clustered says (xapi_host_helpers.ml's reboot rule).</summary>
    public bool Clustered { get; set; }

    /// <summary>Lab extension: with <see cref="Clustered"/>, simulated seconds the SR stays "recovering" (a health-check
    /// task) after a host rejoins; meanwhile no host may go down.</summary>
    public double RecoverySeconds { get; set; }
}

public sealed class VmSpec
{
    public string Name { get; set; } = "";

    public string? Host { get; set; }

    public long MemoryMiB { get; set; } = 8192;

    public string PowerState { get; set; } = "Running";

    public List<string>? Srs { get; set; }

    public bool PvDrivers { get; set; } = true;

    public bool HaProtected { get; set; }

    public bool Pci { get; set; }

    public bool Vgpu { get; set; }

    /// <summary>Lab extension: a USB device passed through.</summary>
    public bool Vusb { get; set; }

    /// <summary>Lab extension: the vGPU is NVIDIA with migration support, so XAPI live-migrates the VM
    /// (xapi_vm_lifecycle.ml check_vgpu). Without it a vGPU prevents migration (VM_HAS_VGPU).</summary>
    public bool VgpuSuspendable { get; set; }

    /// <summary>Lab extension: how the guest booted, hvm (default), pv or pvh. A PV-booted guest migrates
    /// without PV drivers (xapi_vm_lifecycle.ml has_definitely_booted_pv).</summary>
    public string DomainType { get; set; } = "hvm";

    /// <summary>Lab extension: an HVM guest without PV drivers whose agent advertises feature-suspend=1: XAPI
    /// migrates it (check_op_for_feature).</summary>
    public bool FeatureSuspend { get; set; }

    /// <summary>Lab extension: an HVM guest without PV drivers whose agent advertises feature-shutdown=1: XAPI can ask
    /// it to shut down cleanly (xapi_vm_lifecycle.ml check_op_for_feature); without it (and without PV drivers)
    /// VM.clean_shutdown is VM_LACKS_FEATURE.</summary>
    public bool FeatureShutdown { get; set; }

    /// <summary>Lab extension: simulated seconds the guest takes to shut down cleanly (default 20).</summary>
    public double ShutdownSeconds { get; set; } = 20;

    /// <summary>Lab extension: the guest never acknowledges a clean shutdown request: after xenopsd's
    /// domain_shutdown_ack_timeout (60 s) VM.clean_shutdown fails with VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT.</summary>
    public bool IgnoresShutdown { get; set; }

    /// <summary>Lab extension: VM_guest_metrics.other data-cant-suspend-reason: XAPI refuses migration with
    /// VM_NON_SUSPENDABLE [vm, reason].</summary>
    public string? CantSuspendReason { get; set; }

    /// <summary>Lab extension: platform:nomigrate=true: VM_IS_IMMOBILE.</summary>
    public bool Nomigrate { get; set; }

    /// <summary>Lab extension: platform:nested-virt=true: VM_IS_IMMOBILE.</summary>
    public bool NestedVirt { get; set; }

    public string? CdromIso { get; set; }

    public string? AffinityGroup { get; set; }

    /// <summary>Lab extension: the VM's other_config (e.g. {"auto_poweron": "true"}).</summary>
    public Dictionary<string, string>? OtherConfig { get; set; }
}

public sealed class GenerateSpec
{
    public List<string> Hosts { get; set; } = [];

    public int PerHost { get; set; }

    public string NamePrefix { get; set; } = "i-2-";

    public List<long> MemoryMiB { get; set; } = [2048, 4096, 8192, 16384];

    public int Seed { get; set; } = 7;
}

public sealed class FaultSpec
{
    public string Type { get; set; } = "";

    public string? Vm { get; set; }

    public string? Host { get; set; }

    public int Times { get; set; } = 1;

    public List<string>? Error { get; set; }

    public double? RebootSeconds { get; set; }

    public string? Guidance { get; set; }

    public double? AtSeconds { get; set; }

    public double? DurationSeconds { get; set; }

    public string? Command { get; set; }

    public int? ErrorCode { get; set; }

    /// <summary>For vmStarts: the VM object (the contract's "vm" field holds an object for this type).</summary>
    public VmSpec? NewVm { get; set; }

    /// <summary>Lab extension (vmBusy): the operation the VM is busy with (export, snapshot, clone...).</summary>
    public string? Operation { get; set; }

    /// <summary>Lab extension (sessionInvalid): probability that a call fails with SESSION_INVALID.</summary>
    public double? Probability { get; set; }

    public int? Seed { get; set; }

    /// <summary>Lab extension (pbdPlugFails): the SR whose PBD on <see cref="Host"/> fails to plug.</summary>
    public string? Sr { get; set; }
}
