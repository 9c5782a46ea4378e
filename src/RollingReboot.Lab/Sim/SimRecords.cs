using System.Globalization;
using System.Text.Json.Nodes;

namespace RollingReboot.Lab.Sim;

/// <summary>Records as XAPI serialises them (field names from the XenAPI datamodel).</summary>
internal sealed partial class SimPool
{
    /// <summary>Class names as API calls spell them, with the lowercase name events use.</summary>
    internal static readonly string[] ApiClasses = ["pool", "host", "host_metrics", "VM", "VM_metrics", "VM_guest_metrics", "SR", "VDI", "PBD", "VBD", "task", "network", "PIF", "PIF_metrics", "session"];

    internal static string EventClass(string apiClass) => apiClass.ToLowerInvariant();

    internal static string? ApiClass(string name) => ApiClasses.FirstOrDefault(c => c.Equals(name, StringComparison.OrdinalIgnoreCase));

    private static JsonArray Arr(IEnumerable<string> items) => new(items.Select(i => (JsonNode?)JsonValue.Create(i)).ToArray());

    private static JsonObject Map(IEnumerable<KeyValuePair<string, string>> items) => new(items.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value))));

    private static string Date(DateTimeOffset t) => t.UtcDateTime.ToString("yyyyMMdd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Unix(DateTimeOffset t) => (t - DateTimeOffset.UnixEpoch).TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture);

    /// <summary>All refs of a class (API spelling).</summary>
    internal IEnumerable<string> RefsOf(string apiClass) => apiClass switch
    {
        "pool" => [PoolRef],
        "host" => Hosts.Select(h => h.Ref),
        "host_metrics" => Hosts.Select(h => h.MetricsRef),
        "VM" => Vms.Select(v => v.Ref),
        "VM_metrics" => Vms.Select(v => v.MetricsRef),
        "VM_guest_metrics" => Vms.Where(v => v.GuestMetricsRef is not null).Select(v => v.GuestMetricsRef!),
        "SR" => Srs.Select(s => s.Ref),
        "VDI" => Vdis.Keys,
        "PBD" => Pbds.Keys,
        "VBD" => Vbds.Keys,
        "task" => Tasks.Keys,
        "network" => Networks.Select(n => n.Ref),
        "PIF" => Pifs.Keys,
        "PIF_metrics" => Pifs.Values.Select(p => p.MetricsRef),
        "session" => Sessions.Keys,
        _ => [],
    };

    internal JsonObject? Record(string apiClass, string r)
    {
        switch (apiClass)
        {
            case "pool" when r == PoolRef:
                return PoolRecordOfRelease();
            case "host":
                return Hosts.FirstOrDefault(h => h.Ref == r) is { } h ? HostRecord(h) : null;
            case "host_metrics":
                return Hosts.FirstOrDefault(h => h.MetricsRef == r) is { } hm ? HostMetricsRecord(hm) : null;
            case "VM":
                return VmsByRef.TryGetValue(r, out var v) ? VmRecordOfRelease(v) : null;
            case "VM_metrics":
                return VmsByMetricsRef.TryGetValue(r, out var vmm) ? VmMetricsRecord(vmm) : null;
            case "VM_guest_metrics":
                return VmsByMetricsRef.TryGetValue(r, out var g) && g.GuestMetricsRef == r ? GuestMetricsRecord(g) : null;
            case "SR":
                return Srs.FirstOrDefault(s => s.Ref == r) is { } sr ? SrRecord(sr) : null;
            case "VDI":
                return Vdis.TryGetValue(r, out var vdi) ? VdiRecord(vdi) : null;
            case "PBD":
                return Pbds.TryGetValue(r, out var pbd) ? PbdRecord(pbd) : null;
            case "VBD":
                return Vbds.TryGetValue(r, out var vbd) ? VbdRecord(vbd) : null;
            case "task":
                return Tasks.TryGetValue(r, out var t) ? TaskRecord(t) : null;
            case "network":
                return Networks.FirstOrDefault(n => n.Ref == r) is { } network ? NetworkRecord(network) : null;
            case "PIF":
                return Pifs.TryGetValue(r, out var pif) ? PifRecord(pif) : null;
            case "PIF_metrics":
                return Pifs.Values.FirstOrDefault(p => p.MetricsRef == r) is { } pm ? PifMetricsRecord(pm) : null;
            case "session":
                return Sessions.TryGetValue(r, out var s) ? SessionRecord(s) : null;
            default:
                return null;
        }
    }

    /// <summary>The uuid of an object (for get_by_uuid and events).</summary>
    internal string? UuidOf(string apiClass, string r) => Record(apiClass, r)?["uuid"]?.GetValue<string>();

    private JsonObject PoolRecordAllReleases() => new()
    {
        ["uuid"] = PoolUuid,
        ["name_label"] = Scenario.Pool.Name,
        ["name_description"] = "",
        ["master"] = Master.Ref,
        ["default_SR"] = Srs.FirstOrDefault(s => s.Shared)?.Ref ?? "OpaqueRef:NULL",
        ["suspend_image_SR"] = "OpaqueRef:NULL",
        ["crash_dump_SR"] = "OpaqueRef:NULL",
        ["other_config"] = Map(PoolOtherConfig),
        ["ha_enabled"] = HaEnabled,
        ["ha_configuration"] = Map(HaConfiguration),
        ["ha_statefiles"] = Arr(HaStatefiles),
        ["ha_host_failures_to_tolerate"] = HaHostFailuresToTolerate,
        ["ha_plan_exists_for"] = HaEnabled ? HaHostFailuresToTolerate : 0,
        ["ha_allow_overcommit"] = HaAllowOvercommit,
        ["ha_overcommitted"] = false,
        ["blobs"] = new JsonObject(),
        ["tags"] = new JsonArray(),
        ["gui_config"] = new JsonObject(),
        ["health_check_config"] = new JsonObject(),
        ["wlb_url"] = "",
        ["wlb_username"] = "",
        ["wlb_enabled"] = false,
        ["wlb_verify_cert"] = false,
        ["redo_log_enabled"] = false,
        ["redo_log_vdi"] = "OpaqueRef:NULL",
        ["vswitch_controller"] = "",
        ["restrictions"] = new JsonObject(),
        ["metadata_VDIs"] = new JsonArray(),
        ["allowed_operations"] = Arr(HaTransition is not null ? [] : HaEnabled ? ["ha_disable"] : ["ha_enable"]),
        ["current_operations"] = PoolCurrentOperations(),
        ["cpu_info"] = new JsonObject(),
        ["policy_no_vendor_device"] = false,
        ["live_patching_disabled"] = false,
        ["igmp_snooping_enabled"] = false,
        ["is_psr_pending"] = false,
        ["coordinator_bias"] = true,
    };

    /// <summary>The pool record as the profile's xapi has it (migration_compression from v22.33.0, commit 7128e631).</summary>
    private JsonObject PoolRecordOfRelease()
    {
        var record = PoolRecordAllReleases();
        if (Profile.HasPoolMigrationCompression)
        {
            record["migration_compression"] = Scenario.Pool.MigrationCompression;
        }

        return record;
    }

    private JsonObject HostRecordAllReleases(SimHost h) => new()
    {
        ["uuid"] = h.Uuid,
        ["name_label"] = h.Name,
        ["name_description"] = "Default install",
        // A host thought down may only be powered on, and only with a power_on_mode (xapi_host_helpers.ml valid_operations).
        ["allowed_operations"] = Arr(h.Power != HostPower.Up ? (!h.Live && h.PowerOnMode.Length > 0 ? ["power_on"] : []) : ClusteredSrDegraded() is null
            ? ["provision", "evacuate", "reboot", "shutdown", "vm_start", "vm_resume", "vm_migrate"]
            : ["provision", "evacuate", "vm_start", "vm_resume", "vm_migrate"]),
        ["current_operations"] = Map(h.CurrentOperations),
        ["API_version_major"] = 2L,
        ["API_version_minor"] = Profile.ApiVersionMinor,
        ["API_version_vendor"] = "XenSource",
        ["API_version_vendor_implementation"] = new JsonObject(),
        ["enabled"] = h.Enabled,
        ["software_version"] = Map(Profile.SoftwareVersion(h.Name)),
        ["other_config"] = Map(HostOtherConfig(h)),
        ["capabilities"] = Arr(["xen-3.0-x86_64", "hvm-3.0-x86_64"]),
        ["cpu_configuration"] = new JsonObject(),
        ["sched_policy"] = "credit",
        ["supported_bootloaders"] = Arr(["pygrub", "eliloader"]),
        ["resident_VMs"] = Arr(Vms.Where(v => v.ResidentOn == h).Select(v => v.Ref)),
        ["logging"] = new JsonObject(),
        ["PIFs"] = Arr(Pifs.Values.Where(p => p.Host == h).Select(p => p.Ref)),
        ["suspend_image_sr"] = "OpaqueRef:NULL",
        ["crash_dump_sr"] = "OpaqueRef:NULL",
        ["crashdumps"] = new JsonArray(),
        ["patches"] = new JsonArray(),
        ["updates"] = new JsonArray(),
        ["PBDs"] = Arr(Pbds.Values.Where(p => p.Host == h).Select(p => p.Ref)),
        ["host_CPUs"] = new JsonArray(),
        ["cpu_info"] = Map(new Dictionary<string, string> { ["cpu_count"] = "32", ["socket_count"] = "2" }),
        ["hostname"] = h.Name,
        ["address"] = h.Address,
        ["metrics"] = h.MetricsRef,
        ["license_params"] = new JsonObject(),
        ["ha_statefiles"] = Arr(HaEnabled ? HaStatefiles : []),
        ["ha_network_peers"] = new JsonArray(),
        ["blobs"] = new JsonObject(),
        ["tags"] = new JsonArray(),
        ["external_auth_type"] = "",
        ["external_auth_service_name"] = "",
        ["external_auth_configuration"] = new JsonObject(),
        ["edition"] = "xcp-ng",
        ["license_server"] = new JsonObject(),
        ["bios_strings"] = new JsonObject(),
        ["power_on_mode"] = h.PowerOnMode,
        ["power_on_config"] = new JsonObject(),
        ["local_cache_sr"] = "OpaqueRef:NULL",
        ["chipset_info"] = new JsonObject(),
        ["PCIs"] = new JsonArray(),
        ["PGPUs"] = new JsonArray(),
        ["PUSBs"] = new JsonArray(),
        ["ssl_legacy"] = false,
        ["guest_VCPUs_params"] = new JsonObject(),
        ["display"] = "enabled",
        ["virtual_hardware_platform_versions"] = new JsonArray(0L, 1L, 2L),
        ["control_domain"] = h.ControlDomainRef ?? "OpaqueRef:NULL",
        ["updates_requiring_reboot"] = Arr(h.UpdatesRequiringReboot),
        ["features"] = new JsonArray(),
        ["iscsi_iqn"] = "iqn.2026-01.com.example:" + h.Name,
        ["multipathing"] = false,
        ["uefi_certificates"] = "",
        ["certificates"] = new JsonArray(),
        ["editions"] = Arr(["xcp-ng"]),
        ["tls_verification_enabled"] = true,
        ["last_software_update"] = Date(h.LastSoftwareUpdate ?? h.BootTime - TimeSpan.FromDays(1)),
        ["https_only"] = false,
        ["memory_overhead"] = 0L,
    };

    /// <summary>The host record as the profile's xapi has it: fields a release does not have yet are not in it.</summary>
    private JsonObject HostRecord(SimHost h)
    {
        var record = HostRecordAllReleases(h);
        if (Profile.HasPendingGuidances)
        {
            // idl/datamodel_host.ml: pending_guidances published 1.303.0; _recommended and _full from v24.10.0 (commit ead6edc1).
            record["pending_guidances"] = Arr(h.PendingGuidances);
        }

        if (Profile.HasGuidanceLists)
        {
            record["pending_guidances_recommended"] = Arr(h.PendingGuidancesRecommended);
            record["pending_guidances_full"] = Arr(h.PendingGuidancesFull);
        }

        if (Profile.HasLatestSyncedUpdatesApplied)
        {
            record["latest_synced_updates_applied"] = h.LatestSyncedUpdatesApplied;
        }

        if (Profile.HasLastUpdateHash)
        {
            record["last_update_hash"] = h.LastUpdateHash;
        }

        return record;
    }

    private static Dictionary<string, string> HostOtherConfig(SimHost h)
    {
        var config = new Dictionary<string, string>
        {
            ["boot_time"] = Unix(h.BootTime),
            ["agent_start_time"] = Unix(h.AgentStartTime),
            ["iscsi_iqn"] = "iqn.2026-01.com.example:" + h.Name,
        };
        if (h.RpmPatchInstallationTime is { } rpm)
        {
            // Written by Xen Orchestra as String(Date.now() / 1000) (xo-server src/xapi/mixins/patching.mjs _xcpUpdate).
            config["rpm_patch_installation_time"] = Unix(rpm);
        }

        // What clients wrote (host.add_to_other_config, set_other_config) as they wrote it.
        foreach (var (key, value) in h.OtherConfig)
        {
            config[key] = value;
        }

        return config;
    }

    private JsonObject HostMetricsRecord(SimHost h) => new()
    {
        ["uuid"] = h.MetricsUuid,
        ["memory_total"] = h.MemoryTotal,
        ["memory_free"] = FreeBytes(h),
        ["live"] = h.Live,
        ["last_updated"] = Date(h.MetricsUpdated),
        ["other_config"] = new JsonObject(),
    };

    /// <summary>The VM record as the profile's xapi has it: pending_guidances_recommended and _full from v24.10.0 (commit
    /// ead6edc1, idl/datamodel_vm.ml).</summary>
    private JsonObject VmRecordOfRelease(SimVm v)
    {
        var record = VmRecord(v);
        if (Profile.HasGuidanceLists)
        {
            record["pending_guidances_recommended"] = Arr(v.PendingGuidancesRecommended);
            record["pending_guidances_full"] = Arr(v.PendingGuidancesFull);
        }

        return record;
    }

    private JsonObject VmRecord(SimVm v) => new()
    {
        ["uuid"] = v.Uuid,
        ["allowed_operations"] = Arr(VmAllowedOperations(v)),
        ["current_operations"] = Map(v.CurrentOperations),
        ["name_label"] = v.Name,
        ["name_description"] = "",
        ["power_state"] = v.PowerState,
        ["user_version"] = 1L,
        ["is_a_template"] = false,
        ["is_default_template"] = false,
        ["suspend_VDI"] = "OpaqueRef:NULL",
        ["resident_on"] = v.ResidentOn?.Ref ?? "OpaqueRef:NULL",
        // message_forwarding.ml reserve_memory_for_vm / allocate_vm_to_host: VM.start_on and VM.pool_migrate reserve the
        // target from the call (and host.evacuate, which migrates each VM the same way) until clear_reservations at the end.
        ["scheduled_to_be_resident_on"] = ScheduledOn(v)?.Ref ?? "OpaqueRef:NULL",
        ["affinity"] = v.ResidentOn?.Ref ?? "OpaqueRef:NULL",
        ["memory_overhead"] = v.OverheadBytes,
        ["memory_target"] = v.MemoryBytes,
        ["memory_static_max"] = v.MemoryBytes,
        ["memory_dynamic_max"] = v.MemoryBytes,
        ["memory_dynamic_min"] = v.MemoryBytes,
        ["memory_static_min"] = v.MemoryBytes,
        ["VCPUs_params"] = new JsonObject(),
        ["VCPUs_max"] = 2L,
        ["VCPUs_at_startup"] = 2L,
        ["actions_after_shutdown"] = "destroy",
        ["actions_after_reboot"] = "restart",
        ["actions_after_crash"] = "restart",
        ["consoles"] = new JsonArray(),
        ["VIFs"] = new JsonArray(),
        ["VBDs"] = Arr(v.VbdRefs),
        ["VUSBs"] = Arr(v.Vusb ? [v.Ref.Replace("OpaqueRef:", "OpaqueRef:u", StringComparison.Ordinal)] : []),
        ["crash_dumps"] = new JsonArray(),
        ["VTPMs"] = new JsonArray(),
        ["PV_bootloader"] = "",
        ["PV_kernel"] = "",
        ["PV_ramdisk"] = "",
        ["PV_args"] = "",
        ["PV_bootloader_args"] = "",
        ["PV_legacy_args"] = "",
        ["HVM_boot_policy"] = v.IsControlDomain ? "" : "BIOS order",
        ["HVM_boot_params"] = new JsonObject(),
        ["HVM_shadow_multiplier"] = 1.0,
        ["platform"] = Map(VmPlatform(v)),
        ["PCI_bus"] = "",
        ["other_config"] = Map(v.OtherConfig),
        ["domid"] = v.IsRunning ? (long)(Math.Abs(v.Uuid.GetHashCode(StringComparison.Ordinal)) % 1000) : -1L,
        ["domarch"] = "",
        ["last_boot_CPU_flags"] = new JsonObject(),
        ["is_control_domain"] = v.IsControlDomain,
        ["metrics"] = v.MetricsRef,
        ["guest_metrics"] = v.GuestMetricsRef ?? "OpaqueRef:NULL",
        ["last_booted_record"] = "",
        ["recommendations"] = "",
        ["xenstore_data"] = new JsonObject(),
        ["ha_always_run"] = v.HaAlwaysRun,
        ["ha_restart_priority"] = v.HaRestartPriority,
        ["is_a_snapshot"] = false,
        ["snapshot_of"] = "OpaqueRef:NULL",
        ["snapshots"] = new JsonArray(),
        ["snapshot_time"] = "19700101T00:00:00Z",
        ["transportable_snapshot_id"] = "",
        ["blobs"] = new JsonObject(),
        ["tags"] = new JsonArray(),
        ["blocked_operations"] = new JsonObject(),
        ["snapshot_info"] = new JsonObject(),
        ["snapshot_metadata"] = "",
        ["parent"] = "OpaqueRef:NULL",
        ["children"] = new JsonArray(),
        ["bios_strings"] = new JsonObject(),
        ["protection_policy"] = "OpaqueRef:NULL",
        ["is_snapshot_from_vmpp"] = false,
        ["snapshot_schedule"] = "OpaqueRef:NULL",
        ["is_vmss_snapshot"] = false,
        ["appliance"] = "OpaqueRef:NULL",
        ["start_delay"] = 0L,
        ["shutdown_delay"] = 0L,
        ["order"] = 0L,
        ["VGPUs"] = Arr(v.Vgpu ? [v.Ref.Replace("OpaqueRef:", "OpaqueRef:g", StringComparison.Ordinal)] : []),
        ["attached_PCIs"] = Arr(v.Pci ? [v.Ref.Replace("OpaqueRef:", "OpaqueRef:p", StringComparison.Ordinal)] : []),
        ["suspend_SR"] = "OpaqueRef:NULL",
        ["version"] = 0L,
        ["generation_id"] = "",
        ["hardware_platform_version"] = 0L,
        ["has_vendor_device"] = false,
        ["requires_reboot"] = false,
        ["reference_label"] = "",
        ["domain_type"] = v.IsControlDomain ? "pv" : v.DomainType,
        ["NVRAM"] = new JsonObject(),
        ["pending_guidances"] = Arr(v.PendingGuidances),
    };

    private JsonObject VmMetricsRecord(SimVm v) => new()
    {
        ["uuid"] = "m-" + v.Uuid,
        ["memory_actual"] = v.IsRunning ? v.MemoryBytes : 0L,
        ["VCPUs_number"] = 2L,
        ["VCPUs_utilisation"] = new JsonObject(),
        ["VCPUs_CPU"] = new JsonObject(),
        ["VCPUs_params"] = new JsonObject(),
        ["VCPUs_flags"] = new JsonObject(),
        ["state"] = new JsonArray(),
        ["start_time"] = Date(SimTime(0) - TimeSpan.FromDays(3)),
        ["install_time"] = Date(SimTime(0) - TimeSpan.FromDays(90)),
        ["last_updated"] = Date(SimTime(0)),
        ["other_config"] = new JsonObject(),
        ["hvm"] = !v.IsControlDomain && v.DomainType == "hvm",
        ["nested_virt"] = v.NestedVirt,
        ["nomigrate"] = v.Nomigrate,
        ["current_domain_type"] = v.IsControlDomain ? "pv" : v.IsRunning ? v.DomainType : "unspecified",
    };

    private static JsonObject GuestMetricsRecord(SimVm v) => new()
    {
        ["uuid"] = "g-" + v.Uuid,
        ["os_version"] = Map(new Dictionary<string, string> { ["name"] = "Debian GNU/Linux 12", ["distro"] = "debian" }),
        // An agent without PV drivers reports no driver version (xapi_pv_driver_version.ml: Unknown).
        ["PV_drivers_version"] = Map(v.PvDrivers ? new Dictionary<string, string> { ["major"] = "8", ["minor"] = "3", ["micro"] = "0" } : []),
        ["PV_drivers_up_to_date"] = v.PvDrivers,
        ["memory"] = new JsonObject(),
        ["disks"] = new JsonObject(),
        ["networks"] = new JsonObject(),
        ["other"] = Map(GuestOther(v)),
        ["last_updated"] = "20260101T00:00:00Z",
        ["other_config"] = new JsonObject(),
        ["live"] = true,
        ["can_use_hotplug_vbd"] = "yes",
        ["can_use_hotplug_vif"] = "yes",
        ["PV_drivers_detected"] = v.PvDrivers,
    };

    /// <summary>VM_guest_metrics.other: the features the agent advertises (xapi_vm_lifecycle.ml has_feature, get_feature).</summary>
    private static Dictionary<string, string> GuestOther(SimVm v)
    {
        var other = new Dictionary<string, string> { ["has-vendor-device"] = "0" };
        if (v.PvDrivers || v.FeatureSuspend)
        {
            other["feature-suspend"] = "1";
        }

        if (v.PvDrivers || v.FeatureShutdown)
        {
            other["feature-shutdown"] = "1";
        }

        if (v.CantSuspendReason is { } reason)
        {
            other["data-cant-suspend-reason"] = reason;
        }

        return other;
    }

    /// <summary>VM.allowed_operations as xapi_vm_lifecycle.ml update_allowed_operations lists them (strict): a running VM
    /// that SimMigrationRules refuses loses pool_migrate, migrate_send and suspend; a VM busy with another operation
    /// loses them too (check_operation_error: no concurrent operation).</summary>
    private static List<string> VmAllowedOperations(SimVm v)
    {
        if (v.IsControlDomain)
        {
            return [];
        }

        if (!v.IsRunning)
        {
            return ["start", "start_on", "export", "destroy", "snapshot"];
        }

        // check_op_for_feature (strict): a guest that cannot be asked loses clean_shutdown and clean_reboot.
        var ops = SimPool.CanBeAskedToShutDown(v)
            ? new List<string> { "clean_shutdown", "hard_shutdown", "clean_reboot", "hard_reboot", "snapshot" }
            : ["hard_shutdown", "hard_reboot", "snapshot"];
        if (v.CurrentOperations.Count == 0 && SimMigrationRules.Refusal(v) is null)
        {
            ops.InsertRange(0, ["pool_migrate", "migrate_send"]);
            ops.Add("suspend");
        }

        return ops;
    }

    private static Dictionary<string, string> VmPlatform(SimVm v)
    {
        var platform = new Dictionary<string, string>();
        if (v.Nomigrate)
        {
            platform["nomigrate"] = "true";
        }

        if (v.NestedVirt)
        {
            platform["nested-virt"] = "true";
        }

        return platform;
    }

    private JsonObject SrRecord(SimSr s) => new()
    {
        ["uuid"] = s.Uuid,
        ["name_label"] = s.Name,
        ["name_description"] = "",
        ["allowed_operations"] = Arr(["vdi_create", "vdi_destroy", "scan"]),
        ["current_operations"] = new JsonObject(),
        ["VDIs"] = Arr(s.VdiRefs),
        ["PBDs"] = Arr(s.PbdRefs),
        ["virtual_allocation"] = 0L,
        ["physical_utilisation"] = 0L,
        ["physical_size"] = 4L << 40,
        ["type"] = s.ContentType == "iso" ? "iso" : s.Shared ? "nfs" : "lvm",
        ["content_type"] = s.ContentType,
        ["shared"] = s.Shared,
        ["other_config"] = new JsonObject(),
        ["tags"] = new JsonArray(),
        ["sm_config"] = new JsonObject(),
        ["blobs"] = new JsonObject(),
        ["local_cache_enabled"] = false,
        ["introduced_by"] = "OpaqueRef:NULL",
        ["clustered"] = s.Clustered,
        ["is_tools_sr"] = false,
    };

    private static JsonObject VdiRecord(SimVdi v) => new()
    {
        ["uuid"] = v.Uuid,
        ["name_label"] = v.Name,
        ["name_description"] = "",
        ["allowed_operations"] = new JsonArray(),
        ["current_operations"] = new JsonObject(),
        ["SR"] = v.Sr.Ref,
        ["VBDs"] = new JsonArray(),
        ["crash_dumps"] = new JsonArray(),
        ["virtual_size"] = 20L << 30,
        ["physical_utilisation"] = 4L << 30,
        ["type"] = v.Type,
        ["sharable"] = false,
        ["read_only"] = v.Sr.ContentType == "iso",
        ["other_config"] = new JsonObject(),
        ["storage_lock"] = false,
        ["location"] = v.Uuid,
        ["managed"] = true,
        ["missing"] = false,
        ["parent"] = "OpaqueRef:NULL",
        ["xenstore_data"] = new JsonObject(),
        ["sm_config"] = new JsonObject(),
        ["is_a_snapshot"] = false,
        ["snapshot_of"] = "OpaqueRef:NULL",
        ["snapshots"] = new JsonArray(),
        ["snapshot_time"] = "19700101T00:00:00Z",
        ["tags"] = new JsonArray(),
        ["allow_caching"] = false,
        ["on_boot"] = "persist",
        ["metadata_of_pool"] = "OpaqueRef:NULL",
        ["metadata_latest"] = false,
        ["is_tools_iso"] = false,
        ["cbt_enabled"] = false,
    };

    private static JsonObject PbdRecord(SimPbd p) => new()
    {
        ["uuid"] = p.Uuid,
        ["host"] = p.Host.Ref,
        ["SR"] = p.Sr.Ref,
        ["device_config"] = new JsonObject(),
        ["currently_attached"] = p.CurrentlyAttached,
        ["other_config"] = new JsonObject(),
    };

    private static JsonObject VbdRecord(SimVbd b) => new()
    {
        ["uuid"] = b.Uuid,
        ["allowed_operations"] = new JsonArray(),
        ["current_operations"] = new JsonObject(),
        ["VM"] = b.Vm.Ref,
        ["VDI"] = b.Vdi?.Ref ?? "OpaqueRef:NULL",
        ["device"] = b.Type == "CD" ? "xvdd" : "xvd" + (char)('a' + int.Parse(b.Device, CultureInfo.InvariantCulture)),
        ["userdevice"] = b.Device,
        ["bootable"] = b.Device == "0",
        ["mode"] = b.Type == "CD" ? "RO" : "RW",
        ["type"] = b.Type,
        ["unpluggable"] = false,
        ["storage_lock"] = false,
        ["empty"] = b.Vdi is null,
        ["other_config"] = new JsonObject(),
        ["currently_attached"] = b.Vm.IsRunning,
        ["status_code"] = 0L,
        ["status_detail"] = "",
        ["runtime_properties"] = new JsonObject(),
        ["qos_algorithm_type"] = "",
        ["qos_algorithm_params"] = new JsonObject(),
        ["qos_supported_algorithms"] = new JsonArray(),
        ["metrics"] = "OpaqueRef:NULL",
    };

    private JsonObject TaskRecord(SimTask t) => new()
    {
        ["uuid"] = t.Uuid,
        ["name_label"] = t.NameLabel,
        ["name_description"] = "",
        ["allowed_operations"] = Arr(t.Status == "pending" ? ["cancel"] : []),
        ["current_operations"] = new JsonObject(),
        ["created"] = Date(t.Created),
        ["finished"] = t.Status == "pending" ? "19700101T00:00:00Z" : Date(t.Finished),
        ["status"] = t.Status,
        ["resident_on"] = Master.Ref,
        ["progress"] = t.Progress,
        ["type"] = "<none/>",
        ["result"] = t.Result,
        ["error_info"] = Arr(t.ErrorInfo),
        ["other_config"] = new JsonObject(),
        ["subtask_of"] = "OpaqueRef:NULL",
        ["subtasks"] = new JsonArray(),
        ["backtrace"] = "()",
    };

    private JsonObject NetworkRecord(SimNetwork n) => new()
    {
        ["uuid"] = n.Uuid,
        ["name_label"] = n.Name,
        ["name_description"] = "",
        ["allowed_operations"] = new JsonArray(),
        ["current_operations"] = new JsonObject(),
        ["VIFs"] = new JsonArray(),
        ["PIFs"] = Arr(n.Pifs.Select(p => p.Ref)),
        ["MTU"] = 1500L,
        ["other_config"] = new JsonObject(),
        ["bridge"] = n.Bridge,
        ["managed"] = true,
        ["blobs"] = new JsonObject(),
        ["tags"] = new JsonArray(),
        ["default_locking_mode"] = "unlocked",
        ["assigned_ips"] = new JsonObject(),
        ["purpose"] = new JsonArray(),
    };

    // idl/datamodel.ml pif (field list of the PIF class); VLAN -1: a physical PIF.
    private JsonObject PifRecord(SimPif p) => new()
    {
        ["uuid"] = p.Uuid,
        ["device"] = p.Device,
        ["network"] = p.Network.Ref,
        ["host"] = p.Host.Ref,
        ["MAC"] = $"00:16:3e:{p.Uuid[..2]}:{p.Uuid[2..4]}:{p.Uuid[4..6]}",
        ["MTU"] = 1500L,
        ["VLAN"] = -1L,
        ["metrics"] = p.MetricsRef,
        ["physical"] = true,
        ["currently_attached"] = p.Attached,
        ["ip_configuration_mode"] = p.Ip.Length > 0 ? "Static" : "None",
        ["IP"] = p.Ip,
        ["netmask"] = p.Ip.Length > 0 ? "255.255.255.0" : "",
        ["gateway"] = "",
        ["DNS"] = "",
        ["bond_slave_of"] = "OpaqueRef:NULL",
        ["bond_master_of"] = new JsonArray(),
        ["VLAN_master_of"] = "OpaqueRef:NULL",
        ["VLAN_slave_of"] = new JsonArray(),
        ["management"] = p.Management,
        ["other_config"] = new JsonObject(),
        ["disallow_unplug"] = p.Management,
        ["tunnel_access_PIF_of"] = new JsonArray(),
        ["tunnel_transport_PIF_of"] = new JsonArray(),
        ["ipv6_configuration_mode"] = "None",
        ["IPv6"] = new JsonArray(),
        ["ipv6_gateway"] = "",
        ["primary_address_type"] = "IPv4",
        ["managed"] = true,
        ["properties"] = new JsonObject(),
        ["capabilities"] = new JsonArray(),
        ["igmp_snooping_status"] = "unknown",
        ["sriov_physical_PIF_of"] = new JsonArray(),
        ["sriov_logical_PIF_of"] = new JsonArray(),
        ["PCI"] = "OpaqueRef:NULL",
    };

    // idl/datamodel.ml pif_metrics: speed in Mbit/s.
    private JsonObject PifMetricsRecord(SimPif p) => new()
    {
        ["uuid"] = p.MetricsUuid,
        ["io_read_kbs"] = 0.0,
        ["io_write_kbs"] = 0.0,
        ["carrier"] = p.Attached,
        ["vendor_id"] = "8086",
        ["vendor_name"] = "Intel Corporation",
        ["device_id"] = "10fb",
        ["device_name"] = "82599ES 10-Gigabit SFI/SFP+ Network Connection",
        ["speed"] = p.SpeedMbps,
        ["duplex"] = true,
        ["pci_bus_path"] = "0000:01:00." + p.Device.TrimStart('e', 't', 'h'),
        ["last_updated"] = Date(NowTime),
        ["other_config"] = new JsonObject(),
    };

    private JsonObject SessionRecord(SimSession s) => new()
    {
        ["uuid"] = s.Uuid,
        ["this_host"] = Master.Ref,
        ["this_user"] = "OpaqueRef:NULL",
        ["last_active"] = Date(SimTime(s.CreatedAt)),
        ["pool"] = false,
        ["other_config"] = new JsonObject(),
        ["is_local_superuser"] = true,
        ["subject"] = "OpaqueRef:NULL",
        ["validation_time"] = Date(SimTime(s.CreatedAt)),
        ["auth_user_sid"] = "",
        ["auth_user_name"] = s.User,
        ["rbac_permissions"] = new JsonArray(),
        ["tasks"] = new JsonArray(),
        ["parent"] = "OpaqueRef:NULL",
        ["originator"] = s.Originator,
        ["client_certificate"] = false,
    };
}
