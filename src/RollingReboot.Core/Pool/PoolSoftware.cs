using System.Globalization;

namespace RollingReboot.Core.Pool;

/// <summary>
/// What a host runs, from its host.software_version (product_brand, product_version, platform_version, xapi_build), and
/// the xapi behaviour the run assumes from it. Releases are xapi-project/xen-api tags; paths are relative to its ocaml/.
/// </summary>
public sealed record PoolSoftware(string? ProductBrand, string? ProductVersion, string? PlatformVersion, Version? Xapi, bool Known)
{
    public const string XcpNg = "XCP-ng";

    /// <summary>No software_version was read (a fake pool): every behaviour is assumed as the newest xapi has it.</summary>
    public static PoolSoftware Unknown { get; } = new(null, null, null, null, Known: false);

    private static readonly Version s_guidanceKeepsDisabled = new(24, 10, 0);
    private static readonly Version s_autoEnable = new(25, 31, 0);
    private static readonly Version s_streamCompression = new(22, 23, 0);

    /// <summary>
    /// Reads host.software_version. xapi_build (the full xapi version) exists from v22.9.0 (xapi/create_misc.ml
    /// make_software_version, commit f92aaa98); before, "xapi" holds a constant 1.20 (v1.249.41 util/xapi_version.ml), so
    /// such a host is only known to be older than 22.9.0.
    /// </summary>
    public static PoolSoftware From(IReadOnlyDictionary<string, string>? softwareVersion)
    {
        if (softwareVersion is null || softwareVersion.Count == 0)
        {
            return Unknown;
        }

        var build = softwareVersion.GetValueOrDefault("xapi_build");
        return new PoolSoftware(
            softwareVersion.GetValueOrDefault("product_brand"),
            softwareVersion.GetValueOrDefault("product_version"),
            softwareVersion.GetValueOrDefault("platform_version"),
            ParseVersion(build),
            Known: true);
    }

    /// <summary>XCP-ng, or a brand not read (a fake pool): its patches are seen through rpm_patch_installation_time.</summary>
    public bool MayBeXcpNg => ProductBrand is null || ProductBrand == XcpNg;

    /// <summary>
    /// A pending mandatory guidance keeps the host disabled: host.enable refuses it with
    /// HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY and xapi does not enable it itself at boot or at a toolstack restart, until
    /// the guidance is applied (xapi/xapi_host.ml assert_safe_to_reenable, xapi/xapi_host_helpers.ml consider_enabling_host;
    /// commit 4c036152 "CP-45568", first in v24.10.0). host.apply_updates disables the host it patches from then on
    /// (commit 3d00a4d5 "CP-45567"). Before, a guidance was information only. Unknown software: assumed so.
    /// </summary>
    public bool GuidanceKeepsHostDisabled => !Known || (Xapi is { } v && v >= s_guidanceKeepsDisabled);

    /// <summary>host.disable takes auto_enable (a disable that survives reboots): idl/datamodel_host.ml, 25.31.0. Not used by the run.</summary>
    public bool HasAutoEnable => !Known || (Xapi is { } v && v >= s_autoEnable);

    /// <summary>
    /// VM.pool_migrate takes a <c>network</c> option (xapi/xapi_vm_migrate.ml pool_migrate, commit 56d676af "Enable to choose
    /// a migration network in VM.pool_migrate", first in v1.297.0; host.evacuate's network parameter too). A host without
    /// xapi_build is older than 22.9.0 and may be older than 1.297.0 (XCP-ng 8.2 runs 1.249): not assumed to have it; older
    /// xapi ignores options it does not know, so such a migration would silently take the management network.
    /// </summary>
    public bool HasMigrationNetwork => !Known || Xapi is not null;

    /// <summary>VM.pool_migrate's <c>compress</c> option (commit f14fb911 "CP-39640/CP-39157 Add stream compression for VM
    /// migration", v22.23.0) and pool.migration_compression (commit 7128e631, v22.33.0).</summary>
    public bool HasStreamCompression => !Known || (Xapi is { } v && v >= s_streamCompression);

    /// <summary>What the log says the run assumes of this pool.</summary>
    public string Describe()
    {
        if (!Known)
        {
            return "software_version not read: assuming the newest xapi behaviour (pending mandatory guidance keeps a host disabled)";
        }

        var product = string.Join(" ", new[] { ProductBrand, ProductVersion }.Where(x => !string.IsNullOrEmpty(x)));
        var xapi = Xapi is { } v ? "xapi " + v.ToString(3) : "xapi older than 22.9.0 (no xapi_build)";
        var platform = PlatformVersion is { Length: > 0 } p ? $", platform {p}" : "";
        var head = $"{(product.Length > 0 ? product : "unknown product")}, {xapi}{platform}";
        var guidance = GuidanceKeepsHostDisabled
            ? "pending mandatory guidance keeps a host disabled and host.enable refuses it (xapi >= 24.10.0): a host disabled with a reboot guidance is rebooted and enabled after it, no host.enable is tried while guidance is pending"
            : "guidances do not hold a host disabled (xapi < 24.10.0): a disabled host is the operator's";
        var signal = MayBeXcpNg
            ? "needs-reboot from other_config.rpm_patch_installation_time after boot_time (as Xen Orchestra), reboot guidances and updates_requiring_reboot"
            : "needs-reboot from reboot guidances (pending_guidances, _recommended, _full) and updates_requiring_reboot";
        var disable = HasAutoEnable
            ? "host.disable with its default auto_enable=true (xapi >= 25.31.0), so xapi re-enables a host after its reboot"
            : "host.disable lasts until the host's next toolstack start (no auto_enable before xapi 25.31.0)";
        return $"{head}: {guidance}; {signal}; {disable}";
    }

    private static Version? ParseVersion(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        // "26.1.4", possibly with a suffix ("25.6.0-1.xs8", "1.0.dev"): the leading numbers.
        var numbers = new List<int>(3);
        foreach (var part in text.Split('.', 3))
        {
            var digits = new string(part.TakeWhile(char.IsAsciiDigit).ToArray());
            if (digits.Length == 0 || !int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                break;
            }

            numbers.Add(n);
            if (digits.Length != part.Length)
            {
                break;
            }
        }

        while (numbers.Count is > 0 and < 3)
        {
            numbers.Add(0);
        }

        return numbers.Count == 3 ? new Version(numbers[0], numbers[1], numbers[2]) : null;
    }
}
