using RollingReboot.Core.Pool;
using static RollingReboot.Core.Planning.PlanText;

namespace RollingReboot.Core.Planning;

/// <summary>
/// --migration-network and --compress against the pool: what XAPI will do with them (blockers where it would not do
/// what was asked), the VM.pool_migrate options the run sends, and the migration model the estimate then uses.
/// </summary>
public static class MigrationRouting
{
    /// <summary>The options the run passes to VM.pool_migrate for this plan's options on this pool.</summary>
    public static MigrationRoute RouteFor(PoolSnapshot pool, PlanOptions options)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(options);
        var network = options.MigrationNetwork is { } name ? pool.FindNetwork(name)?.Uuid : null;
        var compress = options.Compress is { } c && pool.Software.HasStreamCompression ? c : (bool?)null;
        return new MigrationRoute(network, compress);
    }

    /// <summary>Whether the pool's migrations will be compressed: the option when xapi has it, else the pool's default.</summary>
    public static bool Compressed(PoolSnapshot pool, PlanOptions options) =>
        pool.Software.HasStreamCompression && (options.Compress ?? pool.MigrationCompression ?? false);

    /// <summary>Checks the route and returns the options with the migration model the estimate should use.</summary>
    internal static PlanOptions Apply(PoolSnapshot pool, PlanOptions options, PlanFindings findings)
    {
        var model = options.MigrationModel with { Compressed = Compressed(pool, options) };
        if (options.Compress == true && !pool.Software.HasStreamCompression)
        {
            findings.Warn(new PlanWarning(
                PlanCodes.CompressionUnsupported,
                $"--compress: {Xapi(pool)} has no migration stream compression (VM.pool_migrate's compress option is from xapi 22.23.0); migrations go uncompressed.",
                "Nothing to do, or update the pool; the estimate assumes no compression."));
        }

        if (options.MigrationNetwork is { } name)
        {
            model = CheckNetwork(pool, options, name, model, findings);
        }

        return options with { MigrationModel = model };
    }

    private static MigrationModel CheckNetwork(PoolSnapshot pool, PlanOptions options, string name, MigrationModel model, PlanFindings findings)
    {
        if (!pool.Software.HasMigrationNetwork)
        {
            findings.Block(new Blocker(
                PlanCodes.MigrationNetworkUnsupported,
                $"--migration-network {name}: {Xapi(pool)} may not know VM.pool_migrate's network option (xapi 1.297.0+); it would ignore it and migrate over the management network.",
                "Run without --migration-network on this pool, or update it."));
            return model;
        }

        if (pool.FindNetwork(name) is not { } network)
        {
            var known = pool.Networks.Select(n => n.Name).Order(StringComparer.Ordinal).ToList();
            findings.Block(new Blocker(
                PlanCodes.MigrationNetworkUnknown,
                $"--migration-network {name}: pool {pool.Name} has no such network (networks: {NameList(known)}).",
                "Name a network of the pool by its name label or uuid (xe network-list)."));
            return model;
        }

        // Every live host may receive VMs (rebooted hosts, hosts outside the run): XAPI checks the destination's PIF.
        foreach (var host in pool.Hosts.Where(h => h.Live).OrderBy(h => h.Name, StringComparer.Ordinal))
        {
            if (network.ProblemOn(host.Uuid) is { } code)
            {
                var why = code switch
                {
                    NetworkPort.NotPresent => $"Host {host.Name} has no PIF on network {network.Name}",
                    NetworkPort.Unplugged => $"Host {host.Name}'s PIF on network {network.Name} is unplugged",
                    _ => $"Host {host.Name}'s PIF on network {network.Name} has no IP address",
                };
                findings.Block(new Blocker(
                    code,
                    $"{why}: XAPI refuses a migration to {host.Name} over it ({code}).",
                    code == NetworkPort.NotPresent
                        ? $"Create the network's PIF on {host.Name} (xe pif-introduce / a VLAN), or run without --migration-network."
                        : $"Plug the PIF and give it an address (xe pif-reconfigure-ip / pif-plug on {host.Name}), or run without --migration-network.",
                    null,
                    host.Name));
            }
        }

        // PIF_metrics.speed is in Mbit/s; an operator's --assume-link-mbps wins.
        return !options.LinkAssumed && network.SlowestSpeedMbps is { } mbps ? model with { HostLinkMBps = mbps / 8 } : model;
    }

    private static string Xapi(PoolSnapshot pool) =>
        pool.Software.Xapi is { } v ? "xapi " + v.ToString(3) : "this pool's xapi (older than 22.9.0)";
}
