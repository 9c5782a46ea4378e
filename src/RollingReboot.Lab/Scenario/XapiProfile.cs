using System.Globalization;

namespace RollingReboot.Lab.Scenario;

/// <summary>
/// What a scenario's <c>pool.xapiVersion</c> makes the lab behave as: a xapi release (a number such as 24.19.2, or one of
/// the named profiles) and the product built on it (<c>pool.productBrand</c>). Every behaviour that changed between xapi
/// releases asks this object, and each flag names the release of xapi-project/xen-api that introduced it (the first tag
/// that holds the change; paths are relative to that repository's ocaml/).
/// </summary>
public sealed class XapiProfile
{
    public const string XcpNg82 = "xcp-ng-8.2";
    public const string XcpNg83 = "xcp-ng-8.3";
    public const string XenServer8 = "xenserver-8";

    public const string BrandXcpNg = "XCP-ng";
    public const string BrandXenServer = "XenServer";

    /// <summary>
    /// The named profiles: the xapi each product shipped (xcp-ng-rpms/xapi SPECS/xapi.spec: branch 8.2 at 1.249.41, branch
    /// 8.3 at 24.19.2 when XCP-ng 8.3.0 came out, XS-8.3 at 26.1.4 = XenServer 8's xapi-26.1.4-3.xs8) and its branding
    /// (xcp-ng/branding-xcp-ng branding/branding: PRODUCT_VERSION and PLATFORM_VERSION of branches 8.2 and master; XenServer 8
    /// calls itself 8.4.0, which Xen Orchestra tests for: xo-web src/common/xo/utils.js, productBrand XenServer, version >= 8.4.0).
    /// </summary>
    private static readonly Dictionary<string, (string Xapi, string Brand, string Product, string Platform)> s_named = new(StringComparer.OrdinalIgnoreCase)
    {
        [XcpNg82] = ("1.249.41", BrandXcpNg, "8.2.1", "3.2.1"),
        [XcpNg83] = ("24.19.2", BrandXcpNg, "8.3.0", "3.4.0"),
        // platform_version 3.4.0 is XCP-ng 8.3's (the same XenServer 8 sources); XenServer's own branding is not public.
        [XenServer8] = ("26.1.4", BrandXenServer, "8.4.0", "3.4.0"),
    };

    private XapiProfile(string name, Version version, string brand, string productVersion, string platformVersion)
    {
        Name = name;
        Version = version;
        Brand = brand;
        ProductVersion = productVersion;
        PlatformVersion = platformVersion;
    }

    public static IReadOnlyCollection<string> Names => s_named.Keys;

    /// <summary>The profile name, or the version as the scenario wrote it.</summary>
    public string Name { get; }

    public Version Version { get; }

    /// <summary>software_version product_brand: XCP-ng or XenServer.</summary>
    public string Brand { get; }

    public string ProductVersion { get; }

    public string PlatformVersion { get; }

    public bool IsXcpNg => Brand == BrandXcpNg;

    private bool AtLeast(int major, int minor, int build = 0) => Version >= new Version(major, minor, build);

    /// <summary>host.pending_guidances: idl/datamodel_host.ml, published 1.303.0 (first tag v1.303.0).</summary>
    public bool HasPendingGuidances => AtLeast(1, 303);

    /// <summary>host.pending_guidances_recommended and _full: commit ead6edc1 "CP-45565: Add new guidance fields", v24.10.0.</summary>
    public bool HasGuidanceLists => AtLeast(24, 10);

    /// <summary>
    /// Pending mandatory guidance keeps a host disabled: host.enable refuses it (xapi/xapi_host.ml assert_safe_to_reenable via
    /// repository_helpers.ml assert_no_host_pending_mandatory_guidance) and consider_enabling_host leaves it disabled at
    /// boot and at a toolstack restart (xapi/xapi_host_helpers.ml); host.apply_updates disables the host first and refuses
    /// a host with guidance outstanding (xapi/xapi_host.ml apply_updates, repository.ml apply_updates). Commits 4c036152
    /// "CP-45568" and 3d00a4d5 "CP-45567", first in v24.10.0. Before, a guidance was only information.
    /// </summary>
    public bool GuidanceKeepsHostDisabled => AtLeast(24, 10);

    /// <summary>host.apply_updates: idl/datamodel_host.ml, published 1.301.0.</summary>
    public bool HasApplyUpdates => AtLeast(1, 301);

    /// <summary>pool.sync_updates: idl/datamodel_pool.ml, published 1.329.0 (username/password 25.7.0).</summary>
    public bool HasSyncUpdates => AtLeast(1, 329);

    /// <summary>host.latest_synced_updates_applied: commit ce29c36e "CP-40204", v23.18.0 (idl/datamodel_host.ml).</summary>
    public bool HasLatestSyncedUpdatesApplied => AtLeast(23, 18);

    /// <summary>host.last_update_hash: commit 9829c901 "CP-43875", v24.10.0 (idl/datamodel_host.ml).</summary>
    public bool HasLastUpdateHash => AtLeast(24, 10);

    /// <summary>VM.restart_device_models: commit c34eb6a7 "CP-45571", v23.30.0 (idl/datamodel_vm.ml).</summary>
    public bool HasRestartDeviceModels => AtLeast(23, 30);

    /// <summary>host.apply_updates on the coordinator sets restart_vm on every running VM when a host's updates ask
    /// RestartVM (xapi/repository.ml maybe_set_restart_for_all_vms): commit 538da2c8 "CP-45567", v24.10.0.</summary>
    public bool SetsRestartVmForAllVms => AtLeast(24, 10);

    /// <summary>host.disable's auto_enable parameter and the persistent host_auto_enable: idl/datamodel_host.ml "Changed, 25.31.0" (absent from v25.30.0).</summary>
    public bool HasAutoEnable => AtLeast(25, 31);

    /// <summary>host.evacuate's network parameter: idl/datamodel_host.ml "Extended, 1.297.0".</summary>
    public bool EvacuateTakesNetwork => AtLeast(1, 297);

    /// <summary>VM.pool_migrate's network option: xapi/xapi_vm_migrate.ml pool_migrate, commit 56d676af, first in v1.297.0.
    /// Before, the option is not looked at (an unknown option is ignored).</summary>
    public bool PoolMigrateTakesNetwork => AtLeast(1, 297);

    /// <summary>VM.pool_migrate's compress option: xapi/xapi_vm_migrate.ml use_compression, commit f14fb911, v22.23.0.</summary>
    public bool HasStreamCompression => AtLeast(22, 23);

    /// <summary>pool.migration_compression: idl/datamodel_pool.ml, commit 7128e631, v22.33.0.</summary>
    public bool HasPoolMigrationCompression => AtLeast(22, 33);

    /// <summary>
    /// host.evacuate's evacuate_batch_size parameter: the datamodel says 23.27.0, but the parameter (commit 3ad1b3ac
    /// "Choose size of batch VM evacuation") is first in v23.28.0's idl/datamodel_host.ml, and a 23.27.0 host does not
    /// know it.
    /// </summary>
    public bool EvacuateTakesBatchSize => AtLeast(23, 28);

    /// <summary>
    /// host.evacuate migrates in parallel batches (xapi.conf evacuation-batch-size, default 10: xapi/xapi_globs.ml): commit
    /// bab83d9d "CP-40155 Parallelize Host.evacuate", v22.24.0. Before (v1.249.41 xapi/xapi_host.ml evacuate) it runs one
    /// synchronous VM.pool_migrate after the other.
    /// </summary>
    public bool EvacuatesInParallel => AtLeast(22, 24);

    /// <summary>software_version xapi_build (the full version): commit f92aaa98 "CP-39031", v22.9.0 (xapi/create_misc.ml make_software_version).</summary>
    public bool HasXapiBuild => AtLeast(22, 9);

    /// <summary>
    /// software_version "xapi": major.minor of the xapi version (xapi/xapi_globs.ml software_version); before 22.9.0 a
    /// constant 1.20 (v1.249.41 util/xapi_version.ml xapi_version_major = 1, xapi_version_minor = 20).
    /// </summary>
    public string XapiShort => HasXapiBuild ? $"{Version.Major}.{Version.Minor}" : "1.20";

    /// <summary>host.API_version_minor (API_version_major is 2 throughout): idl/datamodel_common.ml / api_version.ml per tag.</summary>
    public long ApiVersionMinor =>
        AtLeast(26, 14) ? 23 : AtLeast(24, 10) ? 21 : AtLeast(22, 5) ? 20 : AtLeast(1, 250) ? 16 : 15;

    /// <summary>
    /// host.software_version as xapi writes it (xapi/create_misc.ml make_software_version, xapi/xapi_globs.ml
    /// software_version; keys with an empty value are left out). Branding keys the profile cannot vouch for (product
    /// version texts, XenServer's platform name) are left out too; "xen" is not modelled.
    /// </summary>
    public IReadOnlyDictionary<string, string> SoftwareVersion(string hostName)
    {
        var v = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["product_version"] = ProductVersion,
            ["platform_version"] = PlatformVersion,
            ["product_brand"] = Brand,
            ["build_number"] = "lab",
            ["hostname"] = hostName,
            ["xapi"] = XapiShort,
            ["xen"] = "4.17.3",
        };
        if (IsXcpNg)
        {
            // xcp-ng/branding-xcp-ng branding/branding: PLATFORM_NAME=XCP.
            v["platform_name"] = "XCP";
        }

        if (HasXapiBuild)
        {
            v["xapi_build"] = Version.ToString(3);
        }

        return v;
    }

    /// <summary>
    /// A profile name (xcp-ng-8.2, xcp-ng-8.3, xenserver-8) or a xapi version (1.249.41, 24.19.2, ...); <paramref name="brand"/>
    /// (pool.productBrand) names the product for a bare version (default XCP-ng) and must agree with a named profile.
    /// </summary>
    public static XapiProfile Parse(string text, string? brand)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (brand is not null && brand != BrandXcpNg && brand != BrandXenServer)
        {
            throw new ScenarioException($"pool.productBrand {brand} is neither {BrandXcpNg} nor {BrandXenServer}");
        }

        if (s_named.TryGetValue(text, out var named))
        {
            if (brand is not null && brand != named.Brand)
            {
                throw new ScenarioException($"pool.xapiVersion {text} is {named.Brand}, but pool.productBrand says {brand}");
            }

            return new XapiProfile(text.ToLowerInvariant(), ParseVersion(named.Xapi)!, named.Brand, named.Product, named.Platform);
        }

        var version = ParseVersion(text) ?? throw new ScenarioException(
            $"pool.xapiVersion {text} is neither a xapi version (such as 24.19.2) nor a profile ({string.Join(", ", s_named.Keys)})");
        var b = brand ?? BrandXcpNg;
        var (product, platform) = b == BrandXenServer
            ? version >= new Version(24, 0, 0) ? ("8.4.0", "3.4.0") : ("8.2.1", "3.2.1")
            : version >= new Version(1, 250, 0) ? ("8.3.0", "3.4.0") : ("8.2.1", "3.2.1");
        return new XapiProfile(text, version, b, product, platform);
    }

    private static Version? ParseVersion(string text)
    {
        var parts = text.Split('.');
        if (parts.Length is < 2 or > 3)
        {
            return null;
        }

        var numbers = new int[3];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out numbers[i]))
            {
                return null;
            }
        }

        return new Version(numbers[0], numbers[1], numbers[2]);
    }

    public override string ToString() => $"{Name} ({Brand} {ProductVersion}, xapi {Version.ToString(3)})";
}
