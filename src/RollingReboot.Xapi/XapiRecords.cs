using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using RollingReboot.Core.Pool;
using RollingReboot.Xapi.Wire;

namespace RollingReboot.Xapi;

/// <summary>
/// Reads XAPI record fields leniently from a parsed reply (no DOM of its own): int64 as number or string (XML-RPC),
/// absent fields as defaults.
/// </summary>
internal readonly struct Fields
{
    private readonly JsonElement _o;
    private readonly JsonProperty[]? _properties;
    private readonly FieldLayout? _layout;

    public Fields(JsonElement o) => _o = o;

    /// <summary>
    /// A record of a class read many times (a pool's thousands of VMs, VBDs, VDIs): its fields are listed once, and each field
    /// asked for is looked for first where <paramref name="layout"/> last found it, not by a scan of the record for each field.
    /// </summary>
    public Fields(JsonElement o, FieldLayout layout)
    {
        _o = o;
        if (o.ValueKind == JsonValueKind.Object)
        {
            var properties = new JsonProperty[o.GetPropertyCount()];
            var i = 0;
            foreach (var p in o.EnumerateObject())
            {
                properties[i++] = p;
            }

            _properties = properties;
            _layout = layout;
        }
    }

    private JsonElement? Get(string name)
    {
        if (_layout is null)
        {
            return _o.ValueKind == JsonValueKind.Object && _o.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;
        }

        var slot = _layout.For(name);
        var properties = _properties!;
        var hint = slot.Hint;
        if ((uint)hint < (uint)properties.Length && properties[hint].NameEquals(slot.Utf8))
        {
            return NotNull(properties[hint].Value);
        }

        // The last of a repeated name, as TryGetProperty finds it.
        for (var i = properties.Length - 1; i >= 0; i--)
        {
            if (properties[i].NameEquals(slot.Utf8))
            {
                slot.Hint = i;
                return NotNull(properties[i].Value);
            }
        }

        return null;
    }

    private static JsonElement? NotNull(JsonElement v) => v.ValueKind != JsonValueKind.Null ? v : null;

    private static string Text(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString() ?? "",
        JsonValueKind.Null => "",
        _ => v.GetRawText(),
    };

    public string Str(string name) => Get(name) is { } v ? Text(v) : "";

    /// <summary>The field is in the record (fields a xapi release does not have yet are absent).</summary>
    public bool Has(string name) => Get(name) is not null;

    public string Ref(string name) => Str(name) is { Length: > 0 } s ? s : "OpaqueRef:NULL";

    public bool Bool(string name) => Get(name) switch
    {
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.String } v => v.GetString() is "true" or "1",
        _ => false,
    };

    public long Long(string name) => Get(name) switch
    {
        { ValueKind: JsonValueKind.Number } v when v.TryGetInt64(out var l) => l,
        { ValueKind: JsonValueKind.Number } v when v.TryGetDouble(out var d) => (long)d,
        { ValueKind: JsonValueKind.String } v when long.TryParse(v.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) => l,
        _ => 0,
    };

    public double Double(string name) => Get(name) switch
    {
        { ValueKind: JsonValueKind.Number } v when v.TryGetDouble(out var d) => d,
        { ValueKind: JsonValueKind.String } v when double.TryParse(v.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        _ => 0,
    };

    public IReadOnlyDictionary<string, string> Map(string name)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (Get(name) is { ValueKind: JsonValueKind.Object } m)
        {
            foreach (var p in m.EnumerateObject())
            {
                result[p.Name] = Text(p.Value);
            }
        }

        return result;
    }

    public IReadOnlyList<string> List(string name)
    {
        if (Get(name) is not { ValueKind: JsonValueKind.Array } a)
        {
            return [];
        }

        var list = new List<string>(a.GetArrayLength());
        foreach (var n in a.EnumerateArray())
        {
            list.Add(Text(n));
        }

        return list;
    }

    /// <summary>Sets of strings arrive as arrays; some map-valued "sets" (current_operations) as objects: take the values.</summary>
    public IReadOnlyList<string> OperationValues(string name) => Get(name) switch
    {
        { ValueKind: JsonValueKind.Object } m => m.EnumerateObject().Select(p => Text(p.Value)).ToList(),
        { ValueKind: JsonValueKind.Array } => List(name),
        _ => [],
    };

    public DateTimeOffset? Date(string name) => XapiDateTime.TryParse(Str(name), out var d) ? d : null;

    /// <summary>A record that arrived as a <see cref="JsonObject"/> (event snapshots, XML-RPC), read the same way.</summary>
    public static T FromNode<T>(string r, JsonObject o, Func<string, JsonElement, T> map)
    {
        using var doc = JsonDocument.Parse(o.ToJsonString());
        return map(r, doc.RootElement);
    }
}

/// <summary>
/// Where each field of one record class was in the last record read: XAPI writes every record of a class with its fields in
/// one order (the datamodel's, ocaml/idl/datamodel*.ml, marshalled by the generated server), so a field is almost always
/// where it was in the record before. Shared by readers on any thread: a stale hint only costs a scan.
/// </summary>
internal sealed class FieldLayout
{
    private readonly ConcurrentDictionary<string, Slot> _slots = new(StringComparer.Ordinal);

    public Slot For(string name) => _slots.GetOrAdd(name, static n => new Slot(Encoding.UTF8.GetBytes(n)));

    internal sealed class Slot(byte[] utf8)
    {
        public byte[] Utf8 { get; } = utf8;

        public int Hint { get; set; } = -1;
    }
}

public sealed record XapiPoolRecord(
    string Ref, string Uuid, string NameLabel, string Master, bool HaEnabled, IReadOnlyDictionary<string, string> HaConfiguration,
    IReadOnlyList<string> HaStatefiles, long HaHostFailuresToTolerate, bool HaAllowOvercommit, IReadOnlyDictionary<string, string> OtherConfig,
    IReadOnlyList<string> CurrentOperations)
{
    /// <summary>migration_compression: idl/datamodel_pool.ml, from v22.33.0 (commit 7128e631); null when absent.</summary>
    public bool? MigrationCompression { get; init; }

    public static XapiPoolRecord From(string r, JsonObject o) => Fields.FromNode(r, o, From);

    private static readonly FieldLayout s_layout = new();

    public static XapiPoolRecord From(string r, JsonElement o)
    {
        var f = new Fields(o, s_layout);
        return new(r, f.Str("uuid"), f.Str("name_label"), f.Ref("master"), f.Bool("ha_enabled"), f.Map("ha_configuration"),
            f.List("ha_statefiles"), f.Long("ha_host_failures_to_tolerate"), f.Bool("ha_allow_overcommit"), f.Map("other_config"),
            f.OperationValues("current_operations"))
        {
            MigrationCompression = f.Has("migration_compression") ? f.Bool("migration_compression") : null,
        };
    }
}

public sealed record XapiHostRecord(
    string Ref, string Uuid, string NameLabel, string Address, string Hostname, bool Enabled, string Metrics, IReadOnlyList<string> ResidentVms,
    long MemoryOverhead, IReadOnlyDictionary<string, string> SoftwareVersion, IReadOnlyDictionary<string, string> OtherConfig,
    IReadOnlyList<string> UpdatesRequiringReboot, IReadOnlyList<string> PendingGuidances, IReadOnlyList<string> CurrentOperations, long ApiVersionMajor, long ApiVersionMinor)
{
    /// <summary>pending_guidances_recommended, from xapi 24.10.0 (absent before: empty).</summary>
    public IReadOnlyList<string> PendingGuidancesRecommended { get; init; } = [];

    /// <summary>pending_guidances_full, from xapi 24.10.0 (absent before: empty).</summary>
    public IReadOnlyList<string> PendingGuidancesFull { get; init; } = [];

    public DateTimeOffset? BootTime => XapiDateTime.TryParseUnixSeconds(OtherConfig.GetValueOrDefault("boot_time"), out var t) ? t : null;

    public DateTimeOffset? AgentStartTime => XapiDateTime.TryParseUnixSeconds(OtherConfig.GetValueOrDefault("agent_start_time"), out var t) ? t : null;

    /// <summary>What XAPI would allow now (reboot, shutdown...): xapi_host_helpers.ml update_allowed_operations.</summary>
    public IReadOnlyList<string> AllowedOperations { get; init; } = [];

    /// <summary>power_on_mode (idl/datamodel_host.ml): "" when the host cannot be powered on through XAPI.</summary>
    public string PowerOnMode { get; init; } = "";

    /// <summary>other_config.rpm_patch_installation_time: Unix seconds Xen Orchestra writes after patching an XCP-ng host
    /// (xo-server src/xapi/mixins/patching.mjs: String(Date.now() / 1000)).</summary>
    public DateTimeOffset? RpmPatchInstallationTime =>
        XapiDateTime.TryParseUnixSeconds(OtherConfig.GetValueOrDefault("rpm_patch_installation_time"), out var t) ? t : null;

    /// <summary>The domain's view of this host with its metrics (null: none read).</summary>
    public HostState ToHostState(XapiHostMetricsRecord? m) =>
        new(Uuid, NameLabel, Address, Enabled, m?.Live ?? false, m?.MemoryTotal ?? 0, m?.MemoryFree ?? 0, MemoryOverhead,
            BootTime, AgentStartTime, PendingGuidances, UpdatesRequiringReboot, CurrentOperations)
        {
            PendingGuidancesRecommended = PendingGuidancesRecommended,
            PendingGuidancesFull = PendingGuidancesFull,
            RpmPatchInstallationTime = RpmPatchInstallationTime,
            Software = PoolSoftware.From(SoftwareVersion),
            AllowedOperations = AllowedOperations,
            PowerOnMode = PowerOnMode,
        };

    public static XapiHostRecord From(string r, JsonObject o) => Fields.FromNode(r, o, From);

    private static readonly FieldLayout s_layout = new();

    public static XapiHostRecord From(string r, JsonElement o)
    {
        var f = new Fields(o, s_layout);
        return new(r, f.Str("uuid"), f.Str("name_label"), f.Str("address"), f.Str("hostname"), f.Bool("enabled"), f.Ref("metrics"), f.List("resident_VMs"),
            f.Long("memory_overhead"), f.Map("software_version"), f.Map("other_config"), f.List("updates_requiring_reboot"),
            f.List("pending_guidances"), f.OperationValues("current_operations"), f.Long("API_version_major"), f.Long("API_version_minor"))
        {
            AllowedOperations = f.List("allowed_operations"),
            PowerOnMode = f.Str("power_on_mode"),
            PendingGuidancesRecommended = f.List("pending_guidances_recommended"),
            PendingGuidancesFull = f.List("pending_guidances_full"),
        };
    }
}

public sealed record XapiHostMetricsRecord(string Ref, bool Live, long MemoryTotal, long MemoryFree, DateTimeOffset? LastUpdated)
{
    public static XapiHostMetricsRecord From(string r, JsonObject o) => Fields.FromNode(r, o, From);

    private static readonly FieldLayout s_layout = new();

    public static XapiHostMetricsRecord From(string r, JsonElement o)
    {
        var f = new Fields(o, s_layout);
        return new(r, f.Bool("live"), f.Long("memory_total"), f.Long("memory_free"), f.Date("last_updated"));
    }
}

public sealed record XapiVmRecord(
    string Ref, string Uuid, string NameLabel, string PowerState, string ResidentOn, string Affinity, bool IsControlDomain, bool IsATemplate, bool IsASnapshot,
    long MemoryStaticMax, long MemoryDynamicMax, long MemoryOverhead, IReadOnlyList<string> Vbds, IReadOnlyList<string> Vifs, string Metrics, string GuestMetrics,
    string HaRestartPriority, IReadOnlyList<string> AttachedPcis, IReadOnlyList<string> Vgpus, IReadOnlyList<string> Vusbs,
    IReadOnlyDictionary<string, string> OtherConfig, IReadOnlyList<string> CurrentOperations, IReadOnlyList<string> AllowedOperations)
{
    public bool IsGuest => !IsControlDomain && !IsATemplate && !IsASnapshot;

    /// <summary>VM.platform: nomigrate and nested-virt make a VM immobile (xapi_vm_lifecycle.ml is_mobile).</summary>
    public IReadOnlyDictionary<string, string> Platform { get; init; } = new Dictionary<string, string>();

    /// <summary>VM.domain_type: hvm, pv, pv_in_pvh, pvh or unspecified.</summary>
    public string DomainType { get; init; } = "";

    /// <summary>VM.pending_guidances (1.303.0) and pending_guidances_recommended (24.10.0): restart_device_model, restart_vm.</summary>
    public IReadOnlyList<string> PendingGuidances { get; init; } = [];

    public static XapiVmRecord From(string r, JsonObject o) => Fields.FromNode(r, o, From);

    private static readonly FieldLayout s_layout = new();

    public static XapiVmRecord From(string r, JsonElement o)
    {
        var f = new Fields(o, s_layout);
        return new(r, f.Str("uuid"), f.Str("name_label"), f.Str("power_state"), f.Ref("resident_on"), f.Ref("affinity"), f.Bool("is_control_domain"),
            f.Bool("is_a_template"), f.Bool("is_a_snapshot"), f.Long("memory_static_max"), f.Long("memory_dynamic_max"), f.Long("memory_overhead"),
            f.List("VBDs"), f.List("VIFs"), f.Ref("metrics"), f.Ref("guest_metrics"), f.Str("ha_restart_priority"), f.List("attached_PCIs"),
            f.List("VGPUs"), f.List("VUSBs"), f.Map("other_config"), f.OperationValues("current_operations"), f.List("allowed_operations"))
        {
            Platform = f.Map("platform"),
            DomainType = f.Str("domain_type"),
            PendingGuidances = [.. f.List("pending_guidances").Concat(f.List("pending_guidances_recommended")).Distinct(StringComparer.Ordinal)],
        };
    }
}

public sealed record XapiVmGuestMetricsRecord(string Ref, bool PvDriversDetected, IReadOnlyDictionary<string, string> PvDriversVersion)
{
    public bool HasPvDrivers => PvDriversDetected || PvDriversVersion.Count > 0;

    /// <summary>VM_guest_metrics.other: the features the guest agent advertises (feature-suspend, data-cant-suspend-reason).</summary>
    public IReadOnlyDictionary<string, string> Other { get; init; } = new Dictionary<string, string>();

    public static XapiVmGuestMetricsRecord From(string r, JsonObject o) => Fields.FromNode(r, o, From);

    private static readonly FieldLayout s_layout = new();

    public static XapiVmGuestMetricsRecord From(string r, JsonElement o)
    {
        var f = new Fields(o, s_layout);
        return new(r, f.Bool("PV_drivers_detected"), f.Map("PV_drivers_version")) { Other = f.Map("other") };
    }
}

public sealed record XapiSrRecord(string Ref, string Uuid, string NameLabel, string Type, string ContentType, bool Shared, IReadOnlyList<string> Pbds)
{
    /// <summary>A clustered (GFS2) SR: while one is plugged xapi refuses a host's reboot if another host is down or the
    /// SR is recovering (CLUSTERED_SR_DEGRADED, xapi_host_helpers.ml).</summary>
    public bool Clustered { get; init; }

    public static XapiSrRecord From(string r, JsonObject o) => Fields.FromNode(r, o, From);

    private static readonly FieldLayout s_layout = new();

    public static XapiSrRecord From(string r, JsonElement o)
    {
        var f = new Fields(o, s_layout);
        return new(r, f.Str("uuid"), f.Str("name_label"), f.Str("type"), f.Str("content_type"), f.Bool("shared"), f.List("PBDs")) { Clustered = f.Bool("clustered") };
    }
}

public sealed record XapiVdiRecord(string Ref, string Uuid, string NameLabel, string Sr)
{
    public static XapiVdiRecord From(string r, JsonObject o) => Fields.FromNode(r, o, From);

    private static readonly FieldLayout s_layout = new();

    public static XapiVdiRecord From(string r, JsonElement o)
    {
        var f = new Fields(o, s_layout);
        return new(r, f.Str("uuid"), f.Str("name_label"), f.Ref("SR"));
    }
}

public sealed record XapiVbdRecord(string Ref, string Vm, string Vdi, string Type, bool Empty)
{
    public static XapiVbdRecord From(string r, JsonObject o) => Fields.FromNode(r, o, From);

    private static readonly FieldLayout s_layout = new();

    public static XapiVbdRecord From(string r, JsonElement o)
    {
        var f = new Fields(o, s_layout);
        return new(r, f.Ref("VM"), f.Ref("VDI"), f.Str("type"), f.Bool("empty"));
    }
}

public sealed record XapiPbdRecord(string Ref, string Host, string Sr, bool CurrentlyAttached)
{
    public static XapiPbdRecord From(string r, JsonObject o) => Fields.FromNode(r, o, From);

    private static readonly FieldLayout s_layout = new();

    public static XapiPbdRecord From(string r, JsonElement o)
    {
        var f = new Fields(o, s_layout);
        return new(r, f.Ref("host"), f.Ref("SR"), f.Bool("currently_attached"));
    }
}

public sealed record XapiNetworkRecord(string Ref, string Uuid, string NameLabel, string Bridge)
{
    private static readonly FieldLayout s_layout = new();

    public static XapiNetworkRecord From(string r, JsonElement o)
    {
        var f = new Fields(o, s_layout);
        return new(r, f.Str("uuid"), f.Str("name_label"), f.Str("bridge"));
    }
}

/// <summary>A PIF: idl/datamodel.ml pif (network, host, currently_attached, IP, IPv6, primary_address_type, metrics).</summary>
public sealed record XapiPifRecord(string Ref, string Device, string Network, string Host, bool CurrentlyAttached, string Ip, IReadOnlyList<string> Ipv6, string PrimaryAddressType, string Metrics)
{
    /// <summary>xapi_pif_helpers.ml get_primary_address: IPv4 when the IP is set; IPv6 when one address is not link-local.</summary>
    public bool HasPrimaryAddress => PrimaryAddressType.Equals("IPv6", StringComparison.OrdinalIgnoreCase)
        ? Ipv6.Any(a => a.Length > 0 && !a.StartsWith("fe80", StringComparison.OrdinalIgnoreCase))
        : Ip.Length > 0;

    private static readonly FieldLayout s_layout = new();

    public static XapiPifRecord From(string r, JsonElement o)
    {
        var f = new Fields(o, s_layout);
        return new(r, f.Str("device"), f.Ref("network"), f.Ref("host"), f.Bool("currently_attached"), f.Str("IP"), f.List("IPv6"),
            f.Str("primary_address_type"), f.Ref("metrics"));
    }
}

/// <summary>PIF_metrics: speed in Mbit/s (0 when unknown), carrier.</summary>
public sealed record XapiPifMetricsRecord(string Ref, long Speed, bool Carrier)
{
    private static readonly FieldLayout s_layout = new();

    public static XapiPifMetricsRecord From(string r, JsonElement o)
    {
        var f = new Fields(o, s_layout);
        return new(r, f.Long("speed"), f.Bool("carrier"));
    }
}

public sealed record XapiTaskRecord(string Ref, string Uuid, string Status, double Progress, string Result, IReadOnlyList<string> ErrorInfo)
{
    /// <summary>success, failure or cancelled: the task will not change again.</summary>
    public bool IsFinished => Status is "success" or "failure" or "cancelled";

    public static XapiTaskRecord From(string r, JsonObject o) => Fields.FromNode(r, o, From);

    private static readonly FieldLayout s_layout = new();

    public static XapiTaskRecord From(string r, JsonElement o)
    {
        var f = new Fields(o, s_layout);
        return new(r, f.Str("uuid"), f.Str("status"), f.Double("progress"), f.Str("result"), f.List("error_info"));
    }
}

/// <summary>Typed reads over a client: <c>get_all_records</c> per class, each record mapped as it is read (no tree of the reply).</summary>
public static class XapiReads
{
    public static async Task<IReadOnlyList<T>> AllRecordsAsync<T>(this XapiClient client, string cls, Func<string, JsonElement, T> map, CancellationToken cancellationToken = default) =>
        await client.CallRecordsAsync(cls + ".get_all_records", [], map, cancellationToken);

    public static Task<T> RecordAsync<T>(this XapiClient client, string cls, string r, Func<string, JsonElement, T> map, CancellationToken cancellationToken = default) =>
        client.CallAsync(cls + ".get_record", [r], o => o.ValueKind == JsonValueKind.Object
            ? map(r, o)
            : throw new XapiException(XapiException.ProtocolError, [cls + ".get_record did not return a record"], cls + ".get_record"), cancellationToken);
}
