/**
 * What rendered RBAC objects grant a ServiceAccount: the rules of every Role and ClusterRole a
 * RoleBinding or ClusterRoleBinding binds to it, expanded into one permission per (group,
 * resource, verb), with where it applies (`cluster`, or a namespace) and the resourceNames that
 * limit it. Pure: it reads parsed manifests (e.g. `helm template` output), not a cluster.
 *
 * A RoleBinding to a ClusterRole grants the ClusterRole's rules in the binding's namespace, as the
 * API server's authorizer does. Wildcards (`*`) are kept as they are, so a comparison with the
 * permissions the operator uses fails on them.
 */
import { permissionKey, type ApiPermission } from './rbac-scan.ts';

export interface RbacObject {
  readonly apiVersion?: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly rules?: readonly PolicyRule[];
  readonly roleRef?: { readonly kind: string; readonly name: string };
  readonly subjects?: readonly { readonly kind: string; readonly name: string; readonly namespace?: string }[];
}

interface PolicyRule {
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  readonly verbs: readonly string[];
  readonly resourceNames?: readonly string[];
  readonly nonResourceURLs?: readonly string[];
}

export interface Grant extends ApiPermission {
  /** `cluster` for a ClusterRoleBinding, else the namespace of the RoleBinding. */
  readonly scope: string;
  /** Set when the rule is limited to these object names. */
  readonly resourceNames?: readonly string[];
  /** `Kind/name` of the role the rule is in. */
  readonly role: string;
}

/** Every permission the objects grant to `system:serviceaccount:<namespace>:<name>`. */
export function grantsFor(objects: readonly RbacObject[], serviceAccount: { readonly namespace: string; readonly name: string }): Grant[] {
  const roles = new Map<string, RbacObject>();
  for (const o of objects) {
    if (o.kind === 'ClusterRole') roles.set(`ClusterRole/${o.metadata.name}`, o);
    if (o.kind === 'Role') roles.set(`Role/${o.metadata.namespace ?? ''}/${o.metadata.name}`, o);
  }
  const grants: Grant[] = [];
  for (const b of objects) {
    if (b.kind !== 'RoleBinding' && b.kind !== 'ClusterRoleBinding') continue;
    const bound = (b.subjects ?? []).some((s) => s.kind === 'ServiceAccount' && s.name === serviceAccount.name && s.namespace === serviceAccount.namespace);
    if (!bound || !b.roleRef) continue;
    const scope = b.kind === 'ClusterRoleBinding' ? 'cluster' : (b.metadata.namespace ?? '');
    const key = b.roleRef.kind === 'ClusterRole' ? `ClusterRole/${b.roleRef.name}` : `Role/${scope}/${b.roleRef.name}`;
    const role = roles.get(key);
    if (!role) throw new Error(`${b.kind} ${b.metadata.name} binds ${key}, which is not among the objects`);
    for (const rule of role.rules ?? []) {
      if (rule.nonResourceURLs) throw new Error(`${key} grants nonResourceURLs ${rule.nonResourceURLs.join(',')}; the operator calls none`);
      for (const group of rule.apiGroups ?? []) {
        for (const resource of rule.resources ?? []) {
          for (const verb of rule.verbs) {
            grants.push({ group, resource, verb, scope, role: key, ...(rule.resourceNames ? { resourceNames: rule.resourceNames } : {}) });
          }
        }
      }
    }
  }
  return grants;
}

/** The distinct `group resource verb` keys of permissions, sorted: what two sides are compared by. */
export function permissionKeys(perms: readonly ApiPermission[]): string[] {
  return [...new Set(perms.map(permissionKey))].sort();
}
