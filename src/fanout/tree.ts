/**
 * The shape of a conversation's notification tree. Members sit in slots; leaf
 * `l` holds slots [l·F, (l+1)·F); a node at level k holds F nodes of level k−1.
 * The conversation calls the nodes of the lowest level with at most F of them,
 * so no object makes more than F outbound calls per window. Branches are pure
 * arithmetic; only leaves keep state (their member list, by version).
 */
export interface TreeNode {
  level: number;
  index: number;
}

export function leafCount(slots: number, fanout: number): number {
  return Math.ceil(slots / fanout);
}

/** The nodes the conversation itself calls (empty when it pokes its members directly). */
export function topNodes(leaves: number, fanout: number): TreeNode[] {
  if (leaves <= 1) return [];
  let level = 0;
  let width = leaves;
  while (width > fanout) {
    width = Math.ceil(width / fanout);
    level += 1;
  }
  return Array.from({ length: width }, (_, index) => ({ level, index }));
}

/** A branch's children, clipped to the leaves that exist. */
export function childrenOf(node: TreeNode, leaves: number, fanout: number): TreeNode[] {
  const level = node.level - 1;
  const existing = Math.ceil(leaves / fanout ** level);
  const first = node.index * fanout;
  const out: TreeNode[] = [];
  for (let i = first; i < Math.min(first + fanout, existing); i++) out.push({ level, index: i });
  return out;
}

/** The leaves under a node: [first, end). */
export function leavesUnder(node: TreeNode, leaves: number, fanout: number): [number, number] {
  const span = fanout ** node.level;
  return [node.index * span, Math.min((node.index + 1) * span, leaves)];
}

/** The fan-out width is part of the name: a different width is a different tree, never a misread member list. */
export function nodeName(conversationId: string, fanout: number, node: TreeNode): string {
  return `${conversationId}/${fanout}/${node.level}/${node.index}`;
}
