using RollingReboot.CloudStack;
using RollingReboot.Core.Ports;

namespace RollingReboot.Cli;

public static class CloudStackErrors
{
    /// <summary>
    /// One line for a CloudStack failure while finding or driving the cluster, in the operator's words. A 401 is explained
    /// by the client (the keys, or a command the keys' role may not call: CloudStack answers both with 401), with where the
    /// keys came from.
    /// </summary>
    public static string Describe(CloudStackException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return "CloudStack: " + (e.ErrorCode == 401
            ? $"{e.ErrorText} (keys from {CloudStackCredentials.ApiKeyVariable} / {CloudStackCredentials.SecretKeyVariable} or the CloudMonkey profile)"
            : e.Message);
    }
}
