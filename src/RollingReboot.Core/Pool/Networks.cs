namespace RollingReboot.Core.Pool;

/// <summary>
/// A XAPI network and its PIFs, read only when the run is to migrate over it (--migration-network). XAPI sends a
/// migration over a named network only when the destination host has a PIF on it that is plugged and has an address
/// (xapi/xapi_network_attach_helpers.ml assert_valid_ip_configuration_on_network_for_host, called by
/// xapi/xapi_vm_migrate.ml pool_migrate for the <c>network</c> option and by xapi/xapi_host.ml evacuate).
/// </summary>
public sealed record NetworkInfo(string Uuid, string Name, string Bridge, IReadOnlyList<NetworkPort> Ports)
{
    /// <summary>The error XAPI would raise for a migration to this host over this network, or null when it would go.</summary>
    public string? ProblemOn(string hostUuid)
    {
        // get_local_pifs then the first PIF: not there, not plugged, no primary address (xapi_pif_helpers.ml get_primary_address).
        var port = Ports.FirstOrDefault(p => p.HostUuid == hostUuid);
        return port is null ? NetworkPort.NotPresent : !port.Attached ? NetworkPort.Unplugged : !port.HasAddress ? NetworkPort.NoAddress : null;
    }

    /// <summary>The slowest link speed its PIFs report (PIF_metrics.speed, Mbit/s), when every host reports one.</summary>
    public double? SlowestSpeedMbps =>
        Ports.Count > 0 && Ports.All(p => p.SpeedMbps is > 0) ? Ports.Min(p => p.SpeedMbps!.Value) : null;
}

/// <summary>One host's PIF on a network: plugged (currently_attached), with an address of its primary type, and its link speed.</summary>
public sealed record NetworkPort(string HostUuid, string Device, bool Attached, bool HasAddress, double? SpeedMbps)
{
    /// <summary>XAPI's codes (ocaml/xapi-consts/api_errors.ml).</summary>
    public const string NotPresent = "PIF_NOT_PRESENT";

    public const string Unplugged = "REQUIRED_PIF_IS_UNPLUGGED";

    public const string NoAddress = "INTERFACE_HAS_NO_IP";
}

/// <summary>
/// How the run's live migrations travel: VM.pool_migrate's options beside live=true. <see cref="NetworkUuid"/>: the
/// <c>network</c> option (xapi 1.297.0+), null for the management network. <see cref="Compress"/>: the <c>compress</c>
/// option (xapi 22.23.0+), null to leave it to pool.migration_compression (xapi/xapi_vm_migrate.ml use_compression).
/// </summary>
public sealed record MigrationRoute(string? NetworkUuid = null, bool? Compress = null)
{
    public static MigrationRoute Default { get; } = new();
}
