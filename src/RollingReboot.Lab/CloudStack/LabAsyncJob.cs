namespace RollingReboot.Lab.CloudStack;

/// <summary>
/// An asynchronous job someone else started in the simulated CloudStack before the lab began (scenario
/// <c>cloudstack.asyncJobs</c>): pending for <paramref name="DurationSeconds"/> simulated seconds from the lab's start
/// (forever when null), then succeeded. It works on one host, one VM (by name) or the cluster itself.
/// <paramref name="Cmd"/> is what CloudStack shows as <c>cmd</c>: the API command's Java class name. A job with a
/// <paramref name="Project"/> is owned by that project's account, which listAsyncJobs never lists.
/// </summary>
public sealed record LabAsyncJob(string Cmd, string? Host = null, string? Vm = null, bool Cluster = false, double? DurationSeconds = null, string Account = "admin", string? Project = null);
