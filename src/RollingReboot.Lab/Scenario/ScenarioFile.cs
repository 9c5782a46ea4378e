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

    /// <summary>Lab extension: false makes every host answer JSON-RPC with text/xml, as hosts before JSON-RPC did.</summary>
    public bool JsonRpc { get; set; } = true;

    /// <summary>Lab extension: the pool's XAPI user name and password (defaults root / a generated password).</summary>
    public string? User { get; set; }

    /// <summary>Lab extension: seconds a restarted toolstack answers HOST_STILL_BOOTING before it serves.</summary>
    public double ToolstackStartSeconds { get; set; } = 5;
}

public sealed class HaSpec
{
    public bool Enabled { get; set; }

    public int? TimeoutSeconds { get; set; } = 180;

    public int HostFailuresToTolerate { get; set; } = 1;

    public bool AllowOvercommit { get; set; } = true;

    public string? HeartbeatSr { get; set; } = "nfs-primary";
}

public sealed class CloudStackSpec
{
    public string ClusterName { get; set; } = "CLUSTER-1";

    public string Zone { get; set; } = "ZONE-1";

    public string Pod { get; set; } = "POD-1";

    public string ManagedState { get; set; } = "Managed";

    /// <summary>Lab extension: async jobs already running in CloudStack when the lab starts.</summary>
    public List<AsyncJobSpec> AsyncJobs { get; set; } = [];
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
}

public sealed class MigrationSpec
{
    public double StreamMBps { get; set; } = 120;

    public double HostLinkMBps { get; set; } = 250;

    public double SetupSeconds { get; set; } = 6;

    public double DirtyRatio { get; set; } = 0.1;
}

public sealed class HostSpec
{
    public string Name { get; set; } = "";

    public long MemoryMiB { get; set; } = 262144;

    public long Dom0MemoryMiB { get; set; } = 4096;

    public bool Master { get; set; }

    public double RebootSeconds { get; set; } = 300;

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

    public string? CdromIso { get; set; }

    public string? AffinityGroup { get; set; }
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

    /// <summary>Lab extension (sessionInvalid): probability that a call fails with SESSION_INVALID.</summary>
    public double? Probability { get; set; }

    public int? Seed { get; set; }
}
